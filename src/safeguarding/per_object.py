"""A value made once for each object (``PerObject``): by the object's identity, for immutable objects that
stand for the same thing for as long as they live (a verified token's ``User``, an access's ``Author``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class PerObject(Generic[K, V]):
    """``make(obj)``, made once for each object and then looked up by its identity. The object is held with its
    value, so its id cannot be reused by another while it is here; at most ``most`` are kept (then all are
    forgotten and made again as they come)."""

    __slots__ = ("_make", "_most", "_held")

    def __init__(self, make: Callable[[K], V], most: int = 1024) -> None:
        self._make, self._most = make, most
        self._held: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K) -> V:
        held = self._held.get(id(obj))
        if held is not None and held[0] is obj:
            return held[1]
        value = self._make(obj)
        if len(self._held) >= self._most:
            self._held.clear()
        self._held[id(obj)] = (obj, value)
        return value

    def __len__(self) -> int:
        return len(self._held)
