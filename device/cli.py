"""`mpox-screen`: the kit's command line, a table of subcommand modules (as `mpox-train` and
`mpox-bench`), each imported only when run. `mpox-screen` alone starts the kit. User errors print
one line and exit 2."""

from __future__ import annotations

import logging
import sys

from device import __version__
from device.options import command_line
from device.options import main as run_command

COMMANDS: dict[str, tuple[str, str]] = {  # name -> (module, one-line help)
    "run": ("device.live.run", "the kit: camera -> verdict and heat-map on screen (default)"),
    "classify": ("device.classify", "screen stored photos (files or folders)"),
    "cases": ("device.cases.cli", "saved cases: list, show, verify, export, purge"),
    "bundle": (
        "device.updates.cli",
        "model bundles: keygen, sign, verify, install, list, rollback",
    ),
    "config": ("device.config.cli", "the daemon's configuration file"),
    "timing-report": ("device.live.timing_report", "table and PNG of a timing.jsonl"),
}


def build_parser(argv: list[str]):
    parser = command_line(
        "mpox-screen",
        "Mpox skin-lesion screening kit. A screening aid, not a diagnosis.",
        COMMANDS,
        argv,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]  # `mpox-screen` alone starts the kit
    return run_command(build_parser(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
