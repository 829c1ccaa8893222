"""The Author recorded with an access is made, and written as JSON, once for each object: always the same as
``Author.of`` and ``_flat_json`` make them."""

from __future__ import annotations

from safeguarding.domain.caller import User
from safeguarding.domain.clock import SystemClock
from safeguarding.domain.cpis import Author
from safeguarding.services.cpis import _AUTHORS_KEPT, CpisService
from safeguarding.store import rows
from safeguarding.store.rows import _author_json, _flat_json


def _user(n: int, name: str | None = "Dr Amy Sandbox") -> User:
    return User(f"55500000{n:04d}", "555100000001", "RR8", frozenset({"B0107"}), role_code="R8000", name=name)


def test_an_author_for_each_user_object_equal_to_author_of() -> None:
    service = CpisService(None, None, SystemClock(), None)  # type: ignore[arg-type]  # _author needs none of them
    amy, twin, ben = _user(1), _user(1), _user(2, name=None)
    assert service._author(amy) == Author.of(amy)
    assert service._author(amy) is service._author(amy)
    assert service._author(twin) == Author.of(amy) and service._author(ben) == Author.of(ben)
    for n in range(_AUTHORS_KEPT + 5):  # beyond the bound: forgotten, made again, still right
        user = _user(n)
        assert service._author(user) == Author.of(user)
    assert len(service._author) <= _AUTHORS_KEPT


def test_an_authors_json_as_flat_json_writes_it() -> None:
    amy, sparse = Author.of(_user(1)), Author("555000000002", "555100000002", "RA7")
    for author in (amy, amy, sparse, Author.of(_user(1))):
        assert _author_json(author) == _flat_json(author)
    for n in range(1100):
        author = Author.of(_user(n))
        assert _author_json(author) == _flat_json(author)
    assert len(rows._author_json) <= 1024
