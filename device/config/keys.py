"""Every key of the config, with its flag: the sections' fields, `[gates.quality]`'s, and the
options the camera and display plug-ins register (`@register("csi", options=CsiOptions)`).

A key's flag is also its name in the flat layout (every key at the top of the file, before the
file had sections), so today's installed files still read. A plug-in option shared by two
plug-ins (`fullscreen`: window and sdl://) is one flag that sets both.
"""

from __future__ import annotations

import functools
from dataclasses import Field, dataclass, fields, is_dataclass
from typing import Any

from device import DeviceError
from device.config.sections import TITLES, Config
from device.options import Flag, kind, parse_text, problem

KeyPath = tuple[str, ...]  # ("model", "threads"), ("gates", "quality", "min_focus"), ...


@dataclass(frozen=True)
class Key:
    flag: str
    paths: tuple[KeyPath, ...]
    field: Field
    group: str

    @property
    def name(self) -> str:
        """How the sectioned file writes it: `model.threads`, `source.csi.af_mode`."""
        return ".".join(self.paths[0])


def sections() -> dict[str, type]:
    return {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]


def nested(cls: type) -> dict[str, type]:
    """A section's sub-tables that are part of it (`[gates.quality]`), by name."""
    return {f.name: f.default_factory for f in fields(cls) if is_dataclass(_default(f))}


def plugin_options(section: str) -> dict[str, type]:
    """`[source.NAME]` / `[display.NAME]`: the registered plug-ins' option classes."""
    if section == "source":
        from device.live.sources import SOURCES as family
    elif section == "display":
        from device.live.displays import DISPLAYS as family
    else:
        return {}
    return family.options()


@functools.cache
def keys() -> tuple[Key, ...]:
    found: dict[str, Key] = {}

    def add(flag: str, path: KeyPath, f: Field, group: str) -> None:
        same = found.get(flag)
        if same is not None and same.field is not f:
            raise AssertionError(f"two config keys take the flag --{flag}: {same.name}, {path}")
        paths = (same.paths if same else ()) + (path,)
        found[flag] = Key(flag, paths, f, group)

    for section, cls in sections().items():
        title, subs = TITLES[section], nested(cls)
        for f in _options(cls):
            add(f.metadata.get("flag") or f.name, (section, f.name), f, title)
        for sub, sub_cls in subs.items():
            for f in _options(sub_cls):
                add(f"{sub}_{f.name}", (section, sub, f.name), f, title)
        for plugin, opts in sorted(plugin_options(section).items()):
            group = f"{title}: options of {_plugin_names(section, opts)}"
            for f in _options(opts):
                add(f.metadata.get("flag") or f.name, (section, plugin, f.name), f, group)
    return tuple(found.values())


def flags() -> list[Flag]:
    return [Flag(k.flag, k.field, k.group) for k in keys()]


@functools.cache
def by_flag() -> dict[str, Key]:
    return {k.flag: k for k in keys()}


def coerce(name: str, f: Field, value: Any) -> Any:
    """A TOML or command-line value -> the key's type and range, or a one-line error naming the
    key as the user wrote it."""
    want = {"int": int, "float": float, "str": str, "bool": bool}[kind(f)]
    try:
        if isinstance(value, str) and want is not str:
            value = parse_text(value, want)
    except ValueError as e:
        raise DeviceError(f"config key {name!r}: {e}") from None
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not want:
        raise DeviceError(
            f"config key {name!r}: expected {want.__name__}, got {type(value).__name__} {value!r}"
        )
    wrong = problem(value, f.metadata)
    if wrong:
        raise DeviceError(f"config key {name!r}: {wrong}")
    return value


def _options(cls: type) -> list[Field]:
    return [f for f in fields(cls) if "help" in f.metadata]


def _default(f: Field) -> Any:
    return f.default_factory() if callable(f.default_factory) else f.default


def _plugin_names(section: str, opts: type) -> str:
    names = [n for n, c in sorted(plugin_options(section).items()) if c is opts]
    return " and ".join(f"{n}://" if n not in ("window",) else n for n in names)
