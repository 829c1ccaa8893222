"""Random identifiers: a version-4 UUID as text, as ``str(uuid.uuid4())`` writes it.

Every request makes two or three (its request id, a recorded access's id, a Bundle's id). ``uuid.uuid4()``
builds a ``UUID`` object (an int, checks, a Python ``__str__``) only to be turned into text; here the same
16 random bytes from ``os.urandom`` get the same version and variant bits and are written as the same text,
at about half the cost (docs/performance.md, round 11; ``tests/unit/test_ids.py`` pins it to the standard
library's text for any bytes).
"""

from __future__ import annotations

import os


def uuid4_text() -> str:
    """A random (version 4, RFC 4122 variant) UUID in its canonical lower-case text."""
    return _text(os.urandom(16))


def _text(random: bytes) -> str:
    """``str(uuid.UUID(bytes=random, version=4))``."""
    raw = bytearray(random)
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
