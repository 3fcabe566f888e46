"""`mpox-bench COMMAND`: a registry of subcommands, one module each, imported only when used.

Each module exposes `add_arguments(parser)` and `run(args) -> int`; adding a command is one line
in `COMMANDS` (name -> module, one-line help).
"""

from __future__ import annotations

import argparse
import logging
import sys

from device import KitError, one_line
from device.options import add_commands

COMMANDS: dict[str, tuple[str, str]] = {
    "latency": ("benchmarks.latency", "time every model file: p50/p95/p99, peak RSS, size, MACs"),
    "accuracy": ("benchmarks.accuracy", "labelled folder through each bundle file: AUC, latency"),
    "arm64": ("benchmarks.arm64", "emulated arm64: install + classify smoke, instruction counts"),
    "pipeline": (
        "benchmarks.pipeline",
        "daemon frame loop on generated frames: stage shares",
    ),
    "startup": (
        "benchmarks.startup",
        "process start to READY against a bare runtime import",
    ),
    "export-baselines": ("benchmarks.baselines", "host: export registry baselines for latency"),
    "quality": ("benchmarks.quality", "image-quality gate on real photos, clean and degraded"),
    "ood": ("benchmarks.ood", "cannot-judge rates: non-skin photographs, demo frames, lesions"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpox-bench",
        description="Benchmarks of the mpox-screen kit: latency, memory, accuracy, ARM cost.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(sub, COMMANDS, argv)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args))
    except KitError as e:  # BenchError, DeviceError
        print(f"mpox-bench {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
