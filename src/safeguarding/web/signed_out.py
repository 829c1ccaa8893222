"""Sessions that have been signed out, shared by every worker process and host through the store.

A session's state travels in its sealed cookie, so signing out must also be remembered on the server:
otherwise a copy of the cookie taken before sign-out would keep working until its idle limit. Sign-out
records a hash of the session's id in the store (``Store.revoke_web_session``, a write like any other:
committed before the browser is answered) until the session's absolute lifetime would have ended, and
every request from a signed-in session asks the store (``Store.web_session_revoked``). A store that
cannot answer raises ``StoreUnavailable``: the request is refused (503), never let through.
"""

from __future__ import annotations

import hashlib
import time

from ..store.interface import Store


def session_hash(session_id: str) -> str:
    """What the store keeps of a session id: a SHA-256 (a leaked table names no live session)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


class SignedOut:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, session_id: str, until: int) -> None:
        """Session ``session_id`` is signed out, everywhere; forget it after ``until`` (epoch seconds)."""
        hashed, now = session_hash(session_id), int(time.time())
        self.store.run(lambda tx: tx.revoke_web_session(hashed, until, now))

    def holds(self, session_id: str) -> bool:
        return self.store.web_session_revoked(session_hash(session_id))
