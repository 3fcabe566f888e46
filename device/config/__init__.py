"""The kit's settings: one TOML file in sections, each section a dataclass its consumer takes
whole, every key also a command-line flag (`sections.py`, `keys.py`, `load.py`, `write.py`).

The dataclasses are the single source of truth: defaults, types, ranges and the help text of the
commented default file and of `run --help` all come from the field metadata, so the file, the
flags and the checks cannot drift apart. Nothing here imports OpenCV or a runtime until a
plug-in's options are asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

from device.config.load import (
    SYSTEM_CONFIG,
    flag_values,
    from_flags,
    load,
    read_toml,
)
from device.config.sections import (
    MAX_THREADS,
    TEXT_ENGINES,
    CasesConfig,
    Config,
    DisplayConfig,
    GatesConfig,
    KitConfig,
    ModelConfig,
    SourceConfig,
)
from device.config.write import to_toml

__all__ = [
    "MAX_THREADS",
    "SYSTEM_CONFIG",
    "TEXT_ENGINES",
    "CasesConfig",
    "Config",
    "DisplayConfig",
    "GatesConfig",
    "KitConfig",
    "ModelConfig",
    "SourceConfig",
    "flag_values",
    "from_flags",
    "load",
    "log_dir",
    "read_toml",
    "state_dir",
    "to_toml",
]


def log_dir(kit: KitConfig) -> Path:
    return Path(kit.log_dir or os.environ.get("LOGS_DIRECTORY", "").split(":")[0] or "logs")


def state_dir(cases: CasesConfig | None = None) -> Path:
    """Saved cases: the config's state_dir, systemd's $STATE_DIRECTORY, else ./state."""
    given = (cases.state_dir if cases else "") or os.environ.get("STATE_DIRECTORY", "").split(":")[
        0
    ]
    return Path(given or "state")
