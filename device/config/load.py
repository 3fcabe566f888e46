"""Reading the kit's TOML file into `Config`, flags over it, and writing it back commented.

Defaults < the file (given, else /etc/mpox-screen/config.toml if present) < flags. The file is in
sections (`[model]`, `[source]`, `[source.csi]` ...); a file in the flat layout (every key at the
top, as installed kits have it) still reads, key by key into its section, with one notice.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from device import DeviceError
from device.config.keys import by_flag, coerce, keys, nested, plugin_options, sections
from device.config.sections import Config

if sys.version_info >= (3, 11):
    import tomllib
else:  # JetPack 6 ships Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)
SYSTEM_CONFIG = Path("/etc/mpox-screen/config.toml")
MAX_CONFIG_BYTES = 1 << 20  # the kit's config is about 5 KB
Values = dict[str, Any]  # section -> {key: value, sub-table: {key: value}}


def read_toml(path: Path, notify: bool = False) -> Values:
    """The file's keys, checked and typed, by section; `notify`: log that a file is flat (the
    daemon's journal; not the printed commands, whose output is read by people and scripts)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise DeviceError(f"config {path}: larger than {MAX_CONFIG_BYTES >> 10} KiB")
        raw = tomllib.loads(data.decode("utf-8"))
    except RecursionError:
        raise DeviceError(f"config {path} is not valid TOML: nested too deeply") from None
    except OSError as e:
        raise DeviceError(f"cannot read config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise DeviceError(f"config {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise DeviceError(f"config {path} is not valid TOML: not UTF-8 text") from None
    values: Values = {}
    flat = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    for name, table in raw.items():
        if isinstance(table, dict):
            _read_section(name, table, values)
    _merge(values, from_flat(flat))
    if flat and notify:
        log.info(
            "config %s: %d keys in the flat layout (before sections), read into their sections; "
            "`mpox-screen config --sections %s` prints the file in sections",
            path,
            len(flat),
            path,
        )
    return values


def _read_section(name: str, table: dict, values: Values) -> None:
    kinds = sections()
    if name not in kinds:
        raise DeviceError(f"unknown config section [{name}] (sections: {', '.join(kinds)})")
    cls = kinds[name]
    tables = nested(cls) | plugin_options(name)
    out = values.setdefault(name, {})
    for key, value in table.items():
        if isinstance(value, dict):
            if key not in tables:
                known = ", ".join(f"[{name}.{t}]" for t in sorted(tables)) or "none"
                raise DeviceError(f"unknown config table [{name}.{key}] (tables: {known})")
            sub = out.setdefault(key, {})
            for k, v in value.items():
                sub[k] = coerce(f"{name}.{key}.{k}", _field(tables[key], f"{name}.{key}", k), v)
        else:
            out[key] = coerce(f"{name}.{key}", _field(cls, name, key), value)


def _field(cls: type, where: str, key: str):
    options = {f.name: f for f in fields(cls) if "help" in f.metadata}
    if key not in options:
        raise DeviceError(
            f"unknown config key '{where}.{key}' (keys of [{where}]: {', '.join(options)})"
        )
    return options[key]


def from_flat(flat: dict[str, Any]) -> Values:
    """Flat keys (flag names: `threads`, `af_mode`, `quality_min_focus`) -> values by section."""
    known = by_flag()
    values: Values = {}
    for name, value in flat.items():
        key = known.get(name)
        if key is None:
            raise DeviceError(
                f"unknown config key {name!r} (known keys: {', '.join(sorted(known))})"
            )
        typed = coerce(name, key.field, value)
        for path in key.paths:
            _put(values, path, typed)
    return values


def _put(values: Values, path: tuple[str, ...], value: Any) -> None:
    *tables, last = path
    for t in tables:
        values = values.setdefault(t, {})
    values[last] = value


def _merge(into: Values, more: Values, override: bool = False) -> None:
    """`more` into `into`: flags override the file; within the file a key set both at the top
    and in its section is an error."""
    for name, value in more.items():
        if isinstance(value, dict):
            _merge(into.setdefault(name, {}), value, override)
        elif name in into and not override:
            raise DeviceError(f"config key {name!r} is set twice (at the top and in its section)")
        else:
            into[name] = value


def build(values: Values) -> Config:
    """The typed config from values by section; plug-in tables equal to their defaults dropped."""
    made = {}
    for name, cls in sections().items():
        given = dict(values.get(name, {}))
        subs, plugins = nested(cls), plugin_options(name)
        for sub, sub_cls in subs.items():
            given[sub] = sub_cls(**given.get(sub, {}))
        if plugins:
            chosen = {p: plugins[p](**given.pop(p)) for p in list(given) if p in plugins}
            given["plugins"] = {p: o for p, o in chosen.items() if o != type(o)()}
        made[name] = cls(**given)
    return Config(**made)


def load(path: Path | None, overrides: dict[str, Any], notify: bool = False) -> Config:
    """Defaults < the TOML file (given, else /etc/mpox-screen/config.toml if present) < flags
    (`overrides` by flag name; None = not given)."""
    if path is None and SYSTEM_CONFIG.is_file():
        path = SYSTEM_CONFIG
    values = read_toml(path, notify) if path is not None else {}
    given = from_flat({k: v for k, v in overrides.items() if v is not None})
    _merge(values, given, override=True)
    return build(values)


def from_flags(**flat: Any) -> Config:
    """A config from keys by flag name and the defaults (no file): for tests and tools."""
    return build(from_flat(flat))


def flag_values(args) -> dict[str, Any]:
    """The config flags a parsed command line has (None where not given)."""
    return {k.flag: getattr(args, k.flag) for k in keys() if hasattr(args, k.flag)}
