"""Runs inside the emulated arm64 root under the counting plugin (`insn_count.c`): loads one model
file through the kit's runtime, warms it up, then runs it `--runs` times between two marks that
the plugin sees (lseek(-1, MAGIC, SEEK_SET): fails with EBADF, changes nothing), so interpreter
start-up, imports and loading stay out of the count."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from pathlib import Path

MARK_START = 0x6D706F7800000001
MARK_STOP = 0x6D706F7800000002
MARK_LAP = 0x6D706F7800000100  # | stage tag: instructions since the previous lap
MARK_AT = 0x6D706F7800000200  # | tag: instructions since the process began


def mark(magic: int) -> None:
    with contextlib.suppress(OSError):
        os.lseek(-1, magic, os.SEEK_SET)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.insn_guest")
    p.add_argument("file", type=Path)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    from benchmarks.probe import sample_input
    from device.core.runtimes import open_runtime

    runtime = open_runtime(args.file, args.threads)
    x = sample_input(runtime)
    for _ in range(args.warmup):
        runtime.run(x)
    mark(MARK_START)
    for _ in range(args.runs):
        runtime.run(x)
    mark(MARK_STOP)
    print(json.dumps({"machine": platform.machine(), "runs": args.runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
