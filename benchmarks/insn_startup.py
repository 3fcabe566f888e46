"""Runs inside the emulated arm64 root under the counting plugin: the kit started as systemd
starts it (`mpox-screen run`, the installed venv's Python from its first instruction), marking
the instructions executed by READY=1 and by the first frame screened and shown; or, with
`--bare`, only `import numpy, cv2, onnxruntime`, the floor any Python kit pays."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from benchmarks.insn_guest import MARK_AT, MARK_START, MARK_STOP, mark

BARE, READY, FIRST_FRAME = 0, 1, 2


def at(tag: int, fn):
    """`fn`, then (the first time) the process's instruction count so far under `tag`."""
    done = []

    def counted(*args, **kwargs):
        out = fn(*args, **kwargs)
        if not done:
            mark(MARK_AT | tag)
            done.append(True)
        return out

    return counted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.insn_startup")
    p.add_argument("source", nargs="?", default="demo://")
    p.add_argument("--fb", default="/tmp/mpox-bench-fb0")
    p.add_argument("--bare", action="store_true")
    p.add_argument("--logs", default="/tmp/insn-startup-logs")
    args = p.parse_args(argv)
    mark(MARK_START)  # the plugin wants a region; the marks below count from the first insn
    if args.bare:
        import cv2  # noqa: F401
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401

        mark(MARK_AT | BARE)
    else:
        from device.cli import main as kit
        from device.live.notify import Notifier
        from device.live.timing import Timing

        Notifier.ready = at(READY, Notifier.ready)
        Timing.frame = at(FIRST_FRAME, Timing.frame)
        flags = ["--display", f"fb://{args.fb}", "--screen-width", "800", "--screen-height",
                 "480", "--fb-bpp", "16", "--max-frames", "1", "--log-dir", args.logs,
                 "--state-dir", f"{args.logs}/state"]  # fmt: skip
        if kit(["run", "--source", args.source, *flags]) != 0:
            return 1
    mark(MARK_STOP)
    print(json.dumps({"machine": platform.machine()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
