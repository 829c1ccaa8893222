"""The PDS client against a PDS-shaped server on loopback over TLS: the mapping (the PDS sandbox's example
patients), headers and signed-JWT client assertion, superseded numbers, 404, slow/down/garbage answers
within the deadline, the optional cache; and the loader refusing security labels it does not understand."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from safeguarding.demographics import PatientDataError, patient_from_pds, patients_from_bundle
from safeguarding.domain.patients import Gender, Patient, SecurityLabel
from safeguarding.pds.client import PdsDemographics, PdsUnavailable
from safeguarding.pds.settings import PdsSettings

from ..pds_server import CLIENT_ID, EXAMPLES, KID, PdsServer, resource
from ..support import fresh_nhs_number, years_ago

_clients: list[PdsDemographics] = []


@pytest.fixture()
def pds(tmp_path: Path) -> Iterator[PdsServer]:
    with PdsServer().running(tmp_path / "pds") as running:
        yield running
        while _clients:
            _clients.pop().close()


def _client(pds: PdsServer, tmp_path: Path, **options: float) -> PdsDemographics:
    key = pds.write_key(tmp_path / "pds-key.pem")
    client = PdsDemographics(PdsSettings(pds.url, pds.token_url, CLIENT_ID, key, KID, ca_file=pds.ca, **options))
    _clients.append(client)
    return client


def test_the_sandbox_examples_map_as_published(pds: PdsServer, tmp_path: Path) -> None:
    client = _client(pds, tmp_path)
    restricted = client.lookup("9000000025")
    assert restricted is not None and restricted.security is SecurityLabel.RESTRICTED
    standard = client.lookup("9000000009")
    assert standard == Patient("9000000009", True, date(2010, 10, 22), Gender.FEMALE, SecurityLabel.UNRESTRICTED,
                               "Y12345", deceased=True)
    assert client.lookup("9736363066").gender is Gender.UNKNOWN  # type: ignore[union-attr]
    minimal = client.lookup("9000000033")
    assert minimal is not None and (minimal.gender, minimal.birth_date) == (None, None)
    assert client.lookup("9111231130") is None  # valid, no such patient: 404
    assert pds.refusals == []  # every request had the token, X-Request-ID and X-Correlation-ID
    assert pds.hits["token"] == 1  # the access token is reused


def test_a_superseded_number_is_followed(pds: PdsServer, tmp_path: Path) -> None:
    current = pds.add(Patient(fresh_nhs_number(), True, years_ago(date.today(), 9), Gender.FEMALE))
    old = pds.add(Patient(fresh_nhs_number(), True, None, None, superseded_by=current))
    patient = _client(pds, tmp_path).lookup(old)
    assert patient is not None
    assert (patient.nhs_number, patient.superseded_by, patient.gender) == (old, current, Gender.FEMALE)


@pytest.mark.parametrize("mode", ["slow", "down", "garbage"])
def test_pds_slow_down_or_garbage_is_unavailable_within_the_deadline(
        pds: PdsServer, tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    client = _client(pds, tmp_path, timeout_seconds=1.0)
    child = pds.add(Patient(fresh_nhs_number(), True, years_ago(date.today(), 9), Gender.FEMALE))
    pds.mode, pds.delay = mode, 5.0
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(PdsUnavailable):
        client.lookup(child)
    assert time.monotonic() - started < 4.0  # the deadline (1 s) with generous slack, not PDS's 5 s
    assert [getattr(r, "event", None) for r in caplog.records] == ["PDS_UNAVAILABLE"]
    assert child not in caplog.text


def test_a_client_assertion_the_platform_refuses_is_unavailable(pds: PdsServer, tmp_path: Path) -> None:
    client = _client(pds, tmp_path)
    pds.write_key(tmp_path / "pds-key.pem")
    pds.key = PdsServer().key  # the platform no longer holds our public key
    with pytest.raises(PdsUnavailable):
        client.lookup("9000000009")
    assert pds.refusals == ["assertion: InvalidSignatureError"]


def test_the_cache_is_off_by_default_and_keeps_answers_when_set(pds: PdsServer, tmp_path: Path) -> None:
    uncached = _client(pds, tmp_path)
    uncached.lookup("9000000009")
    uncached.lookup("9000000009")
    assert pds.hits["patient"] == 2
    cached = _client(pds, tmp_path, cache_seconds=60)
    cached.lookup("9000000009")
    cached.lookup("9000000009")
    assert pds.hits["patient"] == 3


def test_the_loader_reads_the_restricted_sandbox_patient_as_restricted() -> None:
    import json
    record = json.loads((EXAMPLES / "patient_9000000025.json").read_text())
    assert patient_from_pds(record).security is SecurityLabel.RESTRICTED


@pytest.mark.parametrize("labels", [
    [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}],
    [{"system": "https://example.org/other-labels", "code": "U"}],
    "U",
])
def test_the_loader_refuses_security_labels_it_does_not_understand(labels: object) -> None:
    record = resource(Patient(fresh_nhs_number(), True, years_ago(date.today(), 9), Gender.FEMALE))
    record["meta"]["security"] = labels
    with pytest.raises(PatientDataError, match="entry 0"):
        list(patients_from_bundle({"resourceType": "Bundle", "entry": [{"resource": record}]}))


def test_several_labels_mean_the_most_restrictive() -> None:
    record = resource(Patient(fresh_nhs_number(), True, years_ago(date.today(), 9), Gender.FEMALE))
    system = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    record["meta"]["security"] = [{"system": system, "code": "V"}, {"system": system, "code": "U"}]
    assert patient_from_pds(record).security is SecurityLabel.VERY_RESTRICTED
