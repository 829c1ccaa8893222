"""Demographics held locally, loaded from FHIR R4 Bundles of PDS-shaped Patient resources.

``LocalDemographics`` implements ``domain.patients.Demographics``; a PDS FHIR client would implement
the same interface (``lookup``) against the national service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from .domain import nhs_number as nhs
from .domain.patients import Gender, Patient, SecurityLabel
from .store.interface import Store

NHS_NUMBER_SYSTEM = nhs.SYSTEM  # PDS names the NHS number by the R4 system only
VERIFICATION_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
VERIFIED_CODE = "01"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"


class LocalDemographics:
    def __init__(self, store: Store) -> None:
        self._store = store

    def lookup(self, nhs_number: str) -> Patient | None:
        return self._store.read_patient(nhs_number)


class PatientDataError(ValueError):
    """A Patient resource this loader cannot use. The message names the entry, never its data."""


def patient_from_pds(resource: dict[str, Any]) -> Patient:
    if resource.get("resourceType") != "Patient":
        raise PatientDataError("not a Patient resource")
    identifiers = [i for i in resource.get("identifier", []) if i.get("system") == NHS_NUMBER_SYSTEM]
    if len(identifiers) != 1 or not nhs.is_valid(identifiers[0].get("value")):
        raise PatientDataError("Patient needs exactly one valid NHS number identifier")
    identifier = identifiers[0]
    verified = any(
        ext.get("url") == VERIFICATION_EXTENSION
        and any(c.get("code") == VERIFIED_CODE for c in ext.get("valueCodeableConcept", {}).get("coding", []))
        for ext in identifier.get("extension", [])
    )
    security = SecurityLabel.UNRESTRICTED
    for label in resource.get("meta", {}).get("security", []):
        if label.get("system") == CONFIDENTIALITY_SYSTEM:
            security = SecurityLabel(label["code"])
    gp = None
    for practitioner in resource.get("generalPractitioner", []):
        ident = practitioner.get("identifier", {})
        if ident.get("system") == ODS_SYSTEM:
            gp = ident.get("value")
    birth = resource.get("birthDate")
    gender = resource.get("gender")
    return Patient(
        nhs_number=identifier["value"],
        verified=verified,
        birth_date=date.fromisoformat(birth) if birth else None,
        gender=Gender(gender) if gender else None,
        security=security,
        gp_ods_code=gp,
        deceased=bool(resource.get("deceasedDateTime") or resource.get("deceasedBoolean")),
    )


def patients_from_bundle(bundle: dict[str, Any]) -> Iterator[Patient]:
    if bundle.get("resourceType") == "Patient":
        yield patient_from_pds(bundle)
        return
    if bundle.get("resourceType") != "Bundle":
        raise PatientDataError("expected a Bundle of Patient resources")
    for index, entry in enumerate(bundle.get("entry", [])):
        try:
            yield patient_from_pds(entry.get("resource", {}))
        except (PatientDataError, ValueError, KeyError) as exc:
            raise PatientDataError(f"entry {index}: {exc}") from exc


def load_patients(store: Store, patients: Iterable[Patient]) -> int:
    """Insert or replace patients in one transaction; returns how many."""
    count = 0
    with store.transaction() as tx:
        for patient in patients:
            tx.put_patient(patient)
            count += 1
    return count
