"""The config as a commented TOML file: `mpox-screen config --print-default` (what install.sh
puts in /etc/mpox-screen/config.toml) and `config --sections FILE` (a flat file in sections)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from device.config.keys import nested, plugin_options
from device.config.sections import TITLES, Config

HEADER = [
    "# mpox-screen daemon settings (TOML), one section per part of the kit. Every key is",
    "# optional; a flag on the command line (--key value, named in `mpox-screen run --help`)",
    "# overrides this file. Unknown sections and keys are refused.",
]


def to_toml(cfg: Config | None = None) -> str:
    """Every key of every section and plug-in table with its help, range and value."""
    cfg = cfg or Config()
    lines = list(HEADER)
    for section in fields(Config):
        record = getattr(cfg, section.name)
        lines += ["", f"# {TITLES[section.name]}", f"[{section.name}]", *_keys(record)]
        for sub in nested(type(record)):
            lines += ["", f"[{section.name}.{sub}]", *_keys(getattr(record, sub))]
        for name, opts in sorted(plugin_options(section.name).items()):
            lines += ["", f"[{section.name}.{name}]", *_keys(record.plugin(name, opts))]
    return "\n".join(lines) + "\n"


def _keys(record: Any) -> list[str]:
    lines = []
    for f in fields(record):
        meta = f.metadata
        if "help" not in meta:
            continue
        note = meta["help"]
        if meta["choices"]:
            note += f" ({' | '.join(map(str, meta['choices']))})"
        elif meta["lo"] is not None:
            hi = "" if meta["hi"] is None else f"..{meta['hi']}"
            note += f" [{meta['lo']}{hi}]"
        lines += [f"# {note}", f"{f.name} = {_value(getattr(record, f.name))}"]
    return lines


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
