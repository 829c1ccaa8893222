"""The SMSP's events and the vocabulary rows it answers them with, held in configuration (SMSP-CONF-001).

The vocabulary is spine-response-code-2-0, the NHS ValueSet every FGM-IS DSTU2 answer carries (its rows,
displays and HTTP statuses are the published ones, in ``api/dstu2/codes.py``). Which row the SMSP answers
each of its own events with is configuration: the ``[vocabulary]`` table of ``smsp.toml`` names the
version and may remap any event below. Only the SMSP's error rows may be chosen, so no configuration can
make a failure look like an answer (an outage reported as ``NO_RECORD_FOUND`` would tell a clinician
there is no indicator when nobody asked).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..api.dstu2 import codes
from ..settings import SettingsError

VERSION = "spine-response-code-2-0"

DEFAULTS: Mapping[str, codes.SpineCode] = MappingProxyType({
    "client_not_registered": codes.ASID_CHECK_FAILED,
    "client_addressing_wrong": codes.ASID_CHECK_FAILED,
    "input_invalid": codes.INPUT_MESSAGE_VALIDATION_ERROR,
    "author_not_authorised": codes.AUTHOR_CREDENTIALS_ERROR,
    "throttled": codes.GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE,  # answered with HTTP 429
    "national_unreachable": codes.COULD_NOT_CONNECT_TO_SPINE,
    "national_reply_unusable": codes.RESPONSE_MESSAGE_VALIDATION_ERROR,
    "national_refused_smsp": codes.GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE,
    "software_failure": codes.GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE,
})

# The rows an event may be answered with: the SMSP's own error rows (Common Provider Requirements,
# appendix A), never an answer about the patient.
CHOOSABLE: Mapping[str, codes.SpineCode] = MappingProxyType({c.code: c for c in (
    codes.ASID_CHECK_FAILED, codes.INPUT_MESSAGE_VALIDATION_ERROR, codes.RESPONSE_MESSAGE_VALIDATION_ERROR,
    codes.COULD_NOT_CONNECT_TO_SPINE, codes.AUTHOR_CREDENTIALS_ERROR,
    codes.GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE)})


def responses(table: Mapping[str, Any]) -> Mapping[str, codes.SpineCode]:
    """The event -> row mapping from a ``[vocabulary]`` table (defaults for events it does not name)."""
    version = table.get("version", VERSION)
    if version != VERSION:
        raise SettingsError(f"vocabulary version {version!r} is not supported (this SMSP speaks {VERSION})")
    chosen = dict(DEFAULTS)
    for event, code in table.items():
        if event == "version":
            continue
        if event not in DEFAULTS:
            raise SettingsError(f"vocabulary: unknown event {event!r} (known: {', '.join(sorted(DEFAULTS))})")
        if code not in CHOOSABLE:
            raise SettingsError(f"vocabulary: {event} may not be answered {code!r} "
                                f"(choose one of {', '.join(sorted(CHOOSABLE))})")
        chosen[event] = CHOOSABLE[code]
    return MappingProxyType(chosen)


def throttled(code: codes.SpineCode) -> codes.SpineCode:
    """The row for a throttled client, with HTTP 429 and the DSTU2 issue type ``throttled``."""
    return codes.SpineCode(code.code, code.display, 429, "error", "throttled")
