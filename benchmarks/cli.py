"""`mpox-bench COMMAND`: a registry of subcommands, one module each, imported only when used.

Each module exposes `add_arguments(parser)` and `run(args) -> int`; adding a command is one line
in `COMMANDS` (name -> module, one-line help), the way `mpox-screen` and `mpox-train` dispatch.
"""

from __future__ import annotations

import argparse
import logging
import sys

from device.options import command_line
from device.options import main as run_command

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
    "tradeoff": (
        "benchmarks.tradeoff",
        "accuracy on a left-out collection against emulated-board instructions, per model",
    ),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    return command_line(
        "mpox-bench",
        "Benchmarks of the mpox-screen kit: latency, memory, accuracy, ARM cost.",
        COMMANDS,
        argv,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(build_parser(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
