"""One registry for every plug-in family, in the spirit of timm's model registry and Frigate's
detector plug-ins: runtimes by file suffix, camera sources and displays by URI scheme (here), and
the host's models by name (`train_host.models`). A plug-in module registers itself with
`@FAMILY.register(key)`; the family imports its built-in modules the first time it is asked, so
importing the kit loads no camera, window or runtime library it does not use. A camera or
display plug-in may register its own options (a dataclass: `register("fb", options=FbOptions)`),
which become the config's `[display.fb]` table and its flags."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, builtins: tuple[str, ...] = ()):
        self.kind, self.builtins = kind, builtins
        self.entries: dict[str, T] = {}
        self.option_types: dict[str, type] = {}
        self._loaded = not builtins

    def register(self, key: str, options: type | None = None) -> Callable[[T], T]:
        def wrap(entry: T) -> T:
            self.entries[key] = entry
            if options is not None:
                self.option_types[key] = options
            return entry

        return wrap

    def get(self, key: str) -> T | None:
        self._load()
        return self.entries.get(key)

    def names(self) -> list[str]:
        self._load()
        return sorted(self.entries)

    def options(self) -> dict[str, type]:
        """The plug-ins' own option classes, by key."""
        self._load()
        return dict(self.option_types)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self.builtins:
                importlib.import_module(module)
