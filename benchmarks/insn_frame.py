"""Runs inside the emulated arm64 root under the counting plugin (`insn_count.c`): the kit's own
daemon, serial (one thread; the model on one thread), on a recorded source into a framebuffer that
is a plain file, with a lap mark after every stage of every frame, so the plugin counts each
stage back to back (what runs between two stages lands in the later one). The frames after
`--warmup` are counted. The source is read on this thread (the camera's grabber thread would
count inside whichever stage is running). `--camera`: instead of the recording, raw frames with
the small stream a CSI camera's ISP (picamera2's lores) or a Jetson's VIC delivers, read from
.npy files: what the kit gets from a CSI camera without spending CPU on it."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import replace

from benchmarks.insn_guest import MARK_LAP, MARK_START, MARK_STOP, mark

STAGES = (
    "capture",  # the recorded frame read and decoded
    "gate",  # the quality gate on the frame's square
    "preprocess",  # crop, resize, normalise to the model's tensor
    "inference",  # the model, its CAM output included (in the graph)
    "reading",  # skin share, the cannot-judge score, the reading
    "decide",  # gates, smoothing window, threshold
    "render",  # the canvas: the frame letterboxed, the square
    "cam",  # the heat-map overlay
    "text",  # verdict, guidance and footer text
    "display",  # to the framebuffer's pixels (RGB565)
    "timing",  # the timing log
)


def after(stage: str, fn):
    """`fn`, then a lap mark for `stage`."""
    tag = MARK_LAP | STAGES.index(stage)

    def counted(*args, **kwargs):
        out = fn(*args, **kwargs)
        mark(tag)
        return out

    return counted


def raw_frames(folder: str):
    """Frames as a CSI camera gives them: the main stream and its small stream, raw."""
    import itertools
    from pathlib import Path

    import numpy as np

    from device.live.sources import Frame

    mains = sorted(Path(folder).glob("*.main.npy"))
    pairs = itertools.cycle([(m, m.with_name(m.name.replace(".main.", ".small."))) for m in mains])
    return lambda: Frame(*(np.load(p) for p in next(pairs)))


def instrument(daemon, warmup: int, frames: int, camera: bool = False) -> None:
    import device.live.daemon as loop
    from device.live.sources import open_source

    cfg = daemon.cfg.source
    if camera:
        daemon.camera.next = after("capture", raw_frames(cfg.uri.removeprefix("dir://")))
    else:
        source = open_source(cfg.uri, replace(cfg, small_size=int(daemon.bundle.input["size"])))
        daemon.camera.next = after("capture", source.read)
    loop.gate = after("gate", loop.gate)
    screener = daemon.screener
    screener.tensor = after("preprocess", screener.tensor)
    screener.runtime.run = after("inference", screener.runtime.run)
    screener.reading = after("reading", screener.reading)
    daemon.decider.judge = after("decide", daemon.decider.judge)
    renderer = daemon.renderer
    renderer.base = after("render", renderer.base)
    renderer.heat = after("cam", renderer.heat)
    renderer.text = after("text", renderer.text)
    daemon.display.show = after("display", daemon.display.show)
    timed = after("timing", daemon.timing.frame)

    def frame(*args, **kwargs):
        timed(*args, **kwargs)
        shown = daemon.timing.frames
        if shown == warmup:
            mark(MARK_START)
        elif shown == warmup + frames:
            mark(MARK_STOP)

    daemon.timing.frame = frame


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.insn_frame")
    p.add_argument("source", help="a recorded source (dir://FOLDER)")
    p.add_argument("--fb", required=True, help="a plain file standing in for /dev/fb0")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--precision", default="int8")
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--logs", default="/tmp/insn-frame-logs")
    p.add_argument("--camera", action="store_true", help="raw frames + small stream (.npy)")
    args = p.parse_args(argv)

    from device.config import from_flags
    from device.live.daemon import Daemon

    cfg = from_flags(
        source=args.source, loop=True, display=f"fb://{args.fb}", screen_width=800,
        screen_height=480, fb_bpp=16, backend=args.backend, precision=args.precision,
        threads=1, pipeline=False, max_frames=args.warmup + args.frames, log_dir=args.logs,
        state_dir=f"{args.logs}/state", summary_interval=86400.0,
    )  # fmt: skip
    daemon = Daemon(cfg)
    instrument(daemon, args.warmup, args.frames, args.camera)
    daemon.run()
    report = {"machine": platform.machine(), "frames": args.frames, "stages": list(STAGES)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
