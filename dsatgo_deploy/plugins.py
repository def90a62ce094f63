"""A registry of named plug-ins (neuron kinds, export targets, importers): each registered once, by name."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries in registration order; a second, different entry under a taken name is refused."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if not name:
            raise ValueError(f"a {self.what} needs a name")
        if name in self._entries and self._entries[name] != entry:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry of that name; KeyError for an unknown one."""
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def entries(self) -> tuple[T, ...]:
        return tuple(self._entries.values())
