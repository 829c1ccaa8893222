"""Opaque references to a patient, carried by every page and form that acts on one.

A clinician may have several tabs open on several children. The session therefore never holds a
"current patient": each patient page, form and confirmation names its patient itself, in the URL
(``/web/patient/<ref>/...``) and again in a hidden form field. A reference is the NHS number sealed
with the session key (AES-256-GCM) and bound to the session's id as associated data, so it cannot be
read (no NHS number in a URL or a log), forged, or used in another session, and it is different each
time it is issued. Every action opens the reference again and checks the form against it.
"""

from __future__ import annotations

from .session import Session, SessionCodec

FIELD = "patient"


def _purpose(session: Session) -> str:
    return f"patient-ref:{session.id}"


def seal(codec: SessionCodec, session: Session, nhs_number: str) -> str:
    return codec.seal(_purpose(session), {"n": nhs_number})


def open_ref(codec: SessionCodec, session: Session, ref: str | None) -> str | None:
    """The NHS number a reference names, or None if it is not one this session issued."""
    if not ref or len(ref) > 200:
        return None
    payload = codec.open(_purpose(session), ref)
    number = payload.get("n") if payload else None
    return number if isinstance(number, str) else None
