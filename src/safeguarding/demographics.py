"""Demographics held locally, loaded from FHIR R4 Bundles of PDS-shaped Patient resources.

``LocalDemographics`` implements ``domain.patients.Demographics``; a PDS FHIR client would implement
the same interface (``lookup``) against the national service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

from .domain import nhs_number as nhs
from .domain.fgm import Indicator
from .domain.patients import Gender, Patient, SecurityLabel
from .store.interface import Store, Transaction

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

    joins_indicator = True  # the FGM search reads the child and its indicator at once (services/fgm.py)

    def joined_lookup(self, nhs_number: str) -> Callable[[Transaction], tuple[Patient | None, Indicator | None]]:
        """The child and its active FGM indicator, in one read made in the FGM search's own transaction."""
        return lambda tx: tx.patient_and_active_indicator(nhs_number)


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
    security = security_label(resource.get("meta", {}).get("security", []))
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


_RESTRICTIVENESS = (SecurityLabel.UNRESTRICTED, SecurityLabel.RESTRICTED, SecurityLabel.VERY_RESTRICTED,
                    SecurityLabel.REDACTED)


def security_label(labels: Any) -> SecurityLabel:
    """The record's confidentiality from PDS ``meta.security`` (U, R, V or REDACTED; none is U). A label this
    service does not understand (another system, another code) refuses the record: it is never read as
    unrestricted. Several labels: the most restrictive."""
    if not isinstance(labels, list):
        raise PatientDataError("meta.security is not a list")
    found = SecurityLabel.UNRESTRICTED
    for label in labels:
        if not isinstance(label, dict) or label.get("system") != CONFIDENTIALITY_SYSTEM:
            raise PatientDataError("a security label of a system this service does not understand")
        try:
            code = SecurityLabel(label.get("code"))
        except ValueError:
            raise PatientDataError("a security label code this service does not understand") from None
        found = max(found, code, key=_RESTRICTIVENESS.index)
    return found


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
