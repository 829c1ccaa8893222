"""``uuid4_text`` writes what ``str(uuid.uuid4())`` writes."""

from __future__ import annotations

import re
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from safeguarding.domain.ids import _text, uuid4_text


@settings(max_examples=2000)
@given(st.binary(min_size=16, max_size=16))
def test_the_same_text_as_the_standard_librarys_for_any_bytes(random: bytes) -> None:
    assert _text(random) == str(uuid.UUID(bytes=random, version=4))


def test_the_extreme_bytes() -> None:
    for random in (bytes(16), b"\xff" * 16, bytes(range(16))):
        assert _text(random) == str(uuid.UUID(bytes=random, version=4))


def test_a_fresh_version_4_uuid_each_time() -> None:
    made = {uuid4_text() for _ in range(1000)}
    assert len(made) == 1000
    for text in made:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", text)
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
