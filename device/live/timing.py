"""Per-stage timing of the frame loop: a ring buffer per stage and a JSON summary line every
`summary_interval` seconds, to a size-rotated file and to the log. Nothing is written per frame
unless `trace_frames` asks for it (an SD card wears out).

"frame" is the work one frame costs (preprocess to display); "capture" is the wait for the camera,
kept apart because a camera slower than the loop is idle time, not cost."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from device import DeviceError
from device.live import board

STAGES = ("capture", "preprocess", "inference", "cam", "render", "display")
WAIT = "capture"  # the wait for the camera: outside the frame's own work
log = logging.getLogger("device.live.timing")


class Ring:
    """The last `capacity` values of one stage and how many arrived since the last summary."""

    def __init__(self, capacity: int = 2048):
        self.values = np.zeros(capacity)
        self.total = 0
        self.fresh = 0

    def add(self, ms: float) -> None:
        self.values[self.total % len(self.values)] = ms
        self.total += 1
        self.fresh += 1

    def take_fresh(self) -> np.ndarray:
        n = min(self.fresh, len(self.values))
        self.fresh = 0
        idx = (self.total - n + np.arange(n)) % len(self.values)
        return self.values[idx]


class QuietRotatingHandler(logging.handlers.RotatingFileHandler):
    """A lost line (disk full, card pulled) is counted and said once, not a traceback per line:
    the kit keeps screening without its timing log."""

    lost = 0

    def handleError(self, record: logging.LogRecord) -> None:
        self.lost += 1
        if self.lost == 1:
            err = sys.exc_info()[1]
            why = getattr(err, "strerror", None) or str(err)
            log.warning(
                "timing log %s: cannot write (%s); screening goes on", self.baseFilename, why
            )

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the final flush on a full disk
            self.lost += 1


def _rotating(path: Path, max_bytes: int, backups: int, name: str) -> logging.Logger:
    out = logging.getLogger(f"device.live.timing.file.{name}")
    out.propagate = False
    out.handlers.clear()
    handler = QuietRotatingHandler(path, maxBytes=max_bytes, backupCount=backups)
    handler.setFormatter(logging.Formatter("%(message)s"))
    out.addHandler(handler)
    out.setLevel(logging.INFO)
    return out


class Timing:
    def __init__(
        self,
        log_dir: Path,
        interval: float,
        max_bytes: int = 1_000_000,
        backups: int = 3,
        trace: bool = False,
    ):
        self.path = log_dir / "timing.jsonl"
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            self.out = _rotating(self.path, max_bytes, backups, "summary")
            self.trace = (
                _rotating(log_dir / "frames.jsonl", max_bytes, backups, "trace") if trace else None
            )
        except OSError as e:
            raise DeviceError(f"cannot write timing logs to {log_dir}: {e.strerror}") from None
        self.rings = {s: Ring() for s in (*STAGES, "frame")}
        self.interval, self.start = interval, time.monotonic()
        self.last, self.frames_at_last, self.frames, self.malformed = self.start, 0, 0, 0
        self.camera: dict | None = None  # the newest frame's camera readings, if it has any

    def frame(self, stages: dict[str, float], frame_ms: float) -> None:
        self.frames += 1
        for name, ms in stages.items():
            self.rings[name].add(ms)
        self.rings["frame"].add(frame_ms)
        if self.trace:
            row = {"frame": self.frames, "t": round(time.monotonic() - self.start, 4)}
            row.update({k: round(v, 3) for k, v in stages.items()}, frame=round(frame_ms, 3))
            self.trace.info(json.dumps(row))

    def fps(self) -> float:
        """Frames per second since the last summary."""
        elapsed = time.monotonic() - self.last
        return (self.frames - self.frames_at_last) / elapsed if elapsed > 0 else 0.0

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.interval

    def summary(self, dropped: int, state: str) -> dict:
        """One JSON line to the file and the log; starts the next interval."""
        now = time.monotonic()
        rss, peak = board.memory_mb()
        row = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "uptime_s": round(now - self.start, 1),
            "state": state,
            "frames": self.frames - self.frames_at_last,
            "fps": round(self.fps(), 2),
            "dropped": dropped,
            "malformed": self.malformed,
            "stages_ms": {name: _stats(ring.take_fresh()) for name, ring in self.rings.items()},
            "board": board.facts(),
            "cpu_temp_c": board.cpu_temperature(),
            "throttled": board.throttled(),
            "rss_mb": rss,
            "peak_rss_mb": peak,
            "camera": self.camera,  # lens position (dioptres), exposure (us), gain: CSI cameras
        }
        self.last, self.frames_at_last = now, self.frames
        line = json.dumps(row)
        self.out.info(line)
        log.info("%s", line)
        return row

    def close(self) -> None:
        for out in (self.out, self.trace):
            for h in out.handlers if out else ():
                h.close()


def _stats(values: np.ndarray) -> dict[str, float] | None:
    if not len(values):
        return None
    p50, p95 = np.percentile(values, [50, 95])
    top = float(values.max())
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "max": round(top, 3)}


def lap(t: dict[str, float], stage: str, since: float) -> float:
    """`t[stage]` = ms since `since`; returns now, the next stage's start."""
    now = time.perf_counter()
    t[stage] = (now - since) * 1000.0
    return now
