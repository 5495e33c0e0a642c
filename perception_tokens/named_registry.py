"""A small ordered registry of named entries, shared by the benchmark and token-kind registries."""

from __future__ import annotations

from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class NamedRegistry(Generic[T]):
    """Entries by ``entry.name``, in registration order; ``what`` names them in errors
    ("benchmark", "perception token kind")."""

    def __init__(self, what: str, entries: Iterable[T] = (), check: Callable[[T, list[T]], None] | None = None):
        self.what = what
        self._check = check  # raises if a new entry conflicts with those registered
        self._entries: dict[str, T] = {}
        for entry in entries:
            self.register(entry)

    def register(self, entry: T) -> T:
        name = entry.name  # type: ignore[attr-defined]
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is already registered")
        if self._check is not None:
            self._check(entry, self.values())
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return list(self._entries)

    def values(self) -> list[T]:
        return list(self._entries.values())

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ValueError(f"unknown {self.what} {name!r}; expected one of {self.names()}")
        return self._entries[name]
