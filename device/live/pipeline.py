"""The frame loop's two stages: the model's work on frame N+1 runs on its own thread while the
main thread draws and shows frame N.

The quality gate runs on the main thread (`gate`), just before a frame is handed over: it decides
whether the model runs at all, and there it overlaps the model's work on the previous frame, so
the two threads carry about equal work per frame (gate + drawing; preprocessing + inference).

Each result carries its own frame, so the screen never pairs an image with another frame's
verdict; the main thread alone draws, shows and pings the watchdog, so a ping still means a
frame was really shown. A worker stuck in inference blocks `collect`, and the watchdog restarts
the kit as it did when inference ran on the main thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass, field

from device.core.quality import QualityLimits, assess
from device.core.screener import Screener
from device.core.skin import skin_fraction
from device.core.verdict import Reading
from device.live.sources import Frame


@dataclass
class Inferred:
    frame: Frame
    t: dict[str, float]  # ms: preprocess (quality gate included), inference
    quality: dict = field(default_factory=dict)
    problem: str | None = None  # a quality problem: no inference was run
    reading: Reading | None = None  # the model's raw outputs (decided on the main thread)


@dataclass
class Gated:
    """A frame past the quality gate: its measurements, its problem (None: fine), the gate's ms."""

    frame: Frame
    quality: dict
    problem: str | None
    ms: float


def gate(frame: Frame, limits: QualityLimits | None) -> Gated:
    """The quality gate on the full frame's square (calibrated at 224 px); `limits` None: none."""
    t0 = time.perf_counter()
    if limits is None:
        return Gated(frame, {}, None, 0.0)
    q = assess(frame.image, limits, bgr=True)
    return Gated(frame, q.as_dict(), q.problem, _ms(t0))


def infer(screener: Screener, gated: Gated) -> Inferred:
    """Preprocessing and the model for a frame the gate passed; a failed one only carries on."""
    frame = gated.frame
    if gated.problem:
        return Inferred(frame, {"preprocess": gated.ms}, gated.quality, gated.problem)
    t0 = time.perf_counter()
    small = frame.small if frame.small is not None else frame.image
    tensor = screener.tensor(small, bgr=True)
    t = {"preprocess": gated.ms + _ms(t0)}
    t1 = time.perf_counter()
    out = screener.runtime.run(tensor)
    t["inference"] = _ms(t1)
    skin = skin_fraction(small, bgr=True)
    reading = screener.reading(out, t["preprocess"] + t["inference"], skin)
    return Inferred(frame, t, gated.quality, None, reading)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


class InferenceWorker:
    def __init__(self, screener: Screener):
        self.screener = screener
        self.inbox: queue.Queue = queue.Queue(maxsize=1)
        self.outbox: queue.Queue = queue.Queue(maxsize=1)
        self.pending = False
        self.thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self.thread.start()

    def submit(self, gated: Gated) -> None:
        assert not self.pending, "collect() the previous frame first"
        self.inbox.put(gated)
        self.pending = True

    def collect(self) -> Inferred | None:
        """The previous frame's result (waits for it), or None when nothing is in flight."""
        if not self.pending:
            return None
        item = self.outbox.get()
        self.pending = False
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        if self.pending:
            with contextlib.suppress(Exception):  # closing: the frame is dropped either way
                self.collect()
        self.inbox.put(None)
        self.thread.join(timeout=5.0)

    def _run(self) -> None:
        while (gated := self.inbox.get()) is not None:
            try:
                self.outbox.put(infer(self.screener, gated))
            except BaseException as e:  # raised again on the main thread by collect()
                self.outbox.put(e)
