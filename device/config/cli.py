"""`mpox-screen config`: the kit's settings file, commented (every key, its help and range)."""

from __future__ import annotations

from pathlib import Path

from device.config.load import load
from device.config.write import to_toml


def add_arguments(p) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--print-default", action="store_true", help="print a commented default file")
    what.add_argument(
        "--sections",
        type=Path,
        metavar="FILE",
        help="print FILE (a flat file of an older kit, or any) in sections, every key commented",
    )


def run(args) -> int:
    print(to_toml(load(args.sections, {}) if args.sections else None), end="")
    return 0
