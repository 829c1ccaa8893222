"""Identifier and code systems the R4 adapters write and read (one place, so they never drift)."""

from __future__ import annotations

from typing import Final

from ...domain import nhs_number

NHS_NUMBER_SYSTEM: Final = nhs_number.SYSTEM  # defined in domain/nhs_number.py, with the rule that reads it
SNOMED = "http://snomed.info/sct"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
SDS_ROLE_PROFILE_SYSTEM = "https://fhir.nhs.uk/Id/sds-role-profile-id"
SDS_JOB_ROLE_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-SDSJobRoleName"

# The HL7v3 CP-IS upload acknowledgement vocabularies (CPVocab.xsd), named by their OIDs.
CPIS_FILE_RESPONSE_SYSTEM = "urn:oid:2.16.840.1.113883.2.1.3.2.4.17.474"
CPIS_RECORD_RESPONSE_SYSTEM = "urn:oid:2.16.840.1.113883.2.1.3.2.4.17.473"
