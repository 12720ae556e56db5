"""A registry: named builders of one kind of thing (generators, discriminators, models), filled
by the modules that define them, in the manner of timm's ``create_model``::

    GENERATORS = Registry("generator")

    @GENERATORS.register("resnet_9blocks")
    def resnet_9blocks(cfg, in_channels, out_channels): ...

    GENERATORS.get(cfg.kind)(cfg, 3, 3)

An unknown name is a ``ConfigError`` that lists the registered ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from i2i.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what  # "generator": how errors name an entry
        self._entries: dict[str, T] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: file ``entry`` under each of ``names``."""

        def add(entry: T) -> T:
            for name in names:
                if name in self._entries:
                    raise ValueError(f"{self.what} {name!r} is registered twice")
                self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.what} {name!r}; choose from {', '.join(self)}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())
