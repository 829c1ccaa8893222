"""Schema-driven fuzzing (schemathesis) of the FGM-IS and CP-IS R4 APIs from the OpenAPI description at
``/_openapi``.

Positive and negative requests generated from the document are sent over HTTPS: to the clinician
interactions with a valid clinician token (FGM-IS: B0370 and B0380; CP-IS: B0107), to the public metadata
with none, and to CP-IS's local authority interactions (mutual TLS) without a client certificate, which
must be refused (403 OperationOutcome). Every answer must be within the document (status, media type,
headers, body schema), never a 5xx, and quick. The normal suite sends ``SAFEGUARDING_FUZZ_REQUESTS``
(default 150) to each server; ``scripts/fuzz`` sends thousands, with random seeds.
"""

from __future__ import annotations

import collections
import os
import time
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from safeguarding.api.openapi import CPIS_R4, openapi_document

from ..support import Server
from .helpers import assert_alive

REQUESTS = int(os.environ.get("SAFEGUARDING_FUZZ_REQUESTS", "150"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
QUICK = 5.0


def test_generated_requests_get_documented_answers_and_never_a_5xx(server: Server) -> None:
    schema = schemathesis.openapi.from_dict(openapi_document(dstu2=False))  # DSTU2: tests/api/test_fgm_dstu2.py
    fgm_token, cpis_token = server.token(("B0370", "B0380")), server.token(("B0107",))
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    failures: list[str] = []
    session = requests.Session()

    def send(case: Any) -> None:
        security = case.operation.definition.raw.get("security")
        if security is not None and "bearer" not in {name for scheme in security for name in scheme}:
            headers = {}  # public, or mutual TLS: sent without a certificate
        else:
            token = cpis_token if case.operation.path.startswith(CPIS_R4) else fgm_token
            headers = {"Authorization": f"Bearer {token}"}
        started = time.monotonic()
        response = case.call(base_url=server.base, session=session, headers=headers, verify=str(server.ca),
                             timeout=30)
        took = time.monotonic() - started
        statuses[(case.operation.label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
            assert took < QUICK, f"answered in {took:.1f} s"
            if not headers and case.operation.definition.raw.get("security"):
                assert response.status_code in (400, 403, 406, 408, 413, 415, 431), "served without a certificate"
        except Exception as failure:  # noqa: BLE001 - schemathesis reports several failures as one group
            failures.append(f"{case.operation.label} -> {response.status_code}: {str(failure)[:800]}\n"
                            f"    {case.as_curl_command(headers=headers, verify=False)}")

    # Generation is random under scripts/fuzz (the "fuzz" profile); the suite's profile is deterministic.
    rounds = 0
    # Each operation gets its share, so that adding operations (CP-IS) does not starve the others.
    operations = [result.ok() for result in schema.get_all_operations()]
    share = max(1, -(-REQUESTS // (2 * len(operations))))
    while sum(statuses.values()) < REQUESTS and rounds < 20:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @settings(max_examples=share, suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(generation_mode=mode))
                def run(case: Any) -> None:
                    send(case)

                run()
        rounds += 1
        if settings.default.derandomize:
            break  # the same examples again would add nothing
    session.close()
    sent = sum(statuses.values())
    print(f"\nschema fuzz on {server.backend}: {sent} requests, {len(failures)} failures")
    for (label, status), count in sorted(statuses.items()):
        print(f"  {label:32} {status}  x{count}")
    assert failures == [], "\n".join(failures[:20])
    assert sent >= REQUESTS * 0.9
    assert all(status < 500 for _, status in statuses)
    assert_alive(server)
