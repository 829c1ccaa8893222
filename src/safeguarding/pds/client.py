"""``PdsDemographics``: ``lookup(nhs_number)`` from PDS FHIR R4.

- ``GET {url}/Patient/{nhs_number}`` with ``Authorization: Bearer``, a fresh ``X-Request-ID`` and an
  ``X-Correlation-ID`` (UUIDs, as PDS requires), ``Accept: application/fhir+json``.
- 200: the record mapped as the local table's loader maps it (gender, birth date, deceased, NHS number
  verification, ``meta.security``). A record whose ``id`` is another NHS number means the one asked for is
  superseded (PDS answers with the current record): the patient is returned as superseded by that number,
  with the current record's facts, as the local table holds such a patient.
- 404: no such patient (``None``), as the local table. 400 (an NHS number PDS calls invalid): ``None`` too.
- Anything else (slow past ``timeout_seconds``, down, 5xx, our credentials refused, an answer that is not a
  Patient this service understands): ``PdsUnavailable``, a ``StoreUnavailable``, so every API answers its
  own "service unavailable"; never a guess. Logged as ``PDS_UNAVAILABLE`` with the reason (no NHS number).
- ``cache_seconds`` > 0 keeps answers (found or not) that long in memory; off by default.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import httpx
import orjson

from .. import inline
from ..demographics import PatientDataError, patient_from_pds
from ..domain import nhs_number as nhs
from ..domain.patients import Patient
from ..security.jwks import tls_context
from ..store.interface import StoreUnavailable
from .auth import AccessTokens, TokenUnavailable
from .settings import PdsSettings

log = logging.getLogger(__name__)
_MAX_ANSWER = 1024 * 1024
_CACHE_SIZE = 10_000


class PdsUnavailable(StoreUnavailable):
    """PDS could not answer usably in time: the service is unavailable, not the patient unknown."""


class PdsDemographics:
    def __init__(self, settings: PdsSettings) -> None:
        self._settings = settings
        self._http = httpx.Client(verify=tls_context(settings.ca_file), timeout=settings.timeout_seconds,
                                  follow_redirects=False, trust_env=False)
        self._tokens = AccessTokens(settings, self._http)
        self._cache: dict[str, tuple[float, Patient | None]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def lookup(self, nhs_number: str) -> Patient | None:
        if self._settings.cache_seconds > 0:
            with self._lock:
                cached = self._cache.get(nhs_number)
            if cached is not None and time.monotonic() < cached[0]:
                return cached[1]
        patient = inline.blocking(self._fetch, nhs_number)
        if self._settings.cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[nhs_number] = (time.monotonic() + self._settings.cache_seconds, patient)
        return patient

    def _fetch(self, nhs_number: str) -> Patient | None:
        deadline = time.monotonic() + self._settings.timeout_seconds
        try:
            token = self._tokens.current(self._settings.timeout_seconds)
            response = self._get(nhs_number, token, deadline)
            if response.status_code == 401:  # the token was withdrawn early: one more go with a new one
                self._tokens.forget()
                response = self._get(nhs_number, self._tokens.current(_left(deadline)), deadline)
        except TokenUnavailable as exc:
            raise self._unavailable(exc.reason) from None
        except httpx.TimeoutException:
            raise self._unavailable("no answer within the deadline") from None
        except httpx.HTTPError as exc:
            raise self._unavailable(f"unreachable ({type(exc).__name__})") from None
        if response.status_code in (400, 404):
            return None
        if response.status_code != 200:
            raise self._unavailable(f"answered {response.status_code}")
        try:
            resource: Any = orjson.loads(response.content)
            if not isinstance(resource, dict):
                raise PatientDataError("not a JSON object")
            patient = patient_from_pds(resource)
        except (orjson.JSONDecodeError, PatientDataError, ValueError, KeyError, TypeError, AttributeError):
            raise self._unavailable("answer is not a Patient this service understands") from None
        if patient.nhs_number != nhs_number:
            if resource.get("id") != patient.nhs_number or not nhs.is_valid(patient.nhs_number):
                raise self._unavailable("answer is about another patient")
            return Patient(nhs_number, patient.verified, patient.birth_date, patient.gender, patient.security,
                           patient.gp_ods_code, patient.deceased, superseded_by=patient.nhs_number)
        return patient

    def _get(self, nhs_number: str, token: str, deadline: float) -> httpx.Response:
        response = self._http.get(
            f"{self._settings.url.rstrip('/')}/Patient/{nhs_number}", timeout=_left(deadline),
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": str(uuid.uuid4()),
                     "X-Correlation-ID": str(uuid.uuid4()), "Accept": "application/fhir+json"})
        if len(response.content) > _MAX_ANSWER:
            raise TokenUnavailable("answer too large")
        return response

    def _unavailable(self, reason: str) -> PdsUnavailable:
        log.warning("PDS unavailable", extra={"event": "PDS_UNAVAILABLE", "reason": reason})
        return PdsUnavailable(f"PDS unavailable: {reason}")


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpx.TimeoutException("deadline passed")
    return left
