"""The capture stage: the camera by URI, its newest frame, and what happens when it is missing,
lost, stalled or sends only unreadable frames. The daemon asks `next()` for a frame; everything
about getting one, and about waiting when there is none, is here.

A missing camera is reopened with a doubling backoff (up to `retry_max`); a lost or stalled one
at once. Each wait is reported to `waiting(reason, seconds)`, which says so on the screen and
pings the watchdog, since a retry is an iteration of a working kit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from device import DeviceError
from device.config import SourceConfig
from device.live.capture import LatestFrame
from device.live.sources import Frame, Source, SourceUnavailable, open_source

log = logging.getLogger(__name__)
WAIT_SLICE = 0.1  # s: how often a wait for a frame or a retry looks at the stop flag


def valid(frame: Frame) -> bool:
    img = frame.image
    return (
        isinstance(img, np.ndarray)
        and img.dtype == np.uint8
        and img.ndim == 3
        and img.shape[2] == 3
        and img.shape[0] >= 16
        and img.shape[1] >= 16
    )


class Camera:
    def __init__(
        self,
        cfg: SourceConfig,
        small_size: int,
        stop: threading.Event,
        waiting: Callable[[str, float], None],
        opened: Callable[[], None],
    ):
        self.cfg = replace(cfg, small_size=small_size)
        self.stop, self.waiting, self.opened = stop, waiting, opened
        self.grabber: LatestFrame | None = None
        self.first = self.backoff = min(0.5, cfg.retry_max)
        self.dropped_closed, self.malformed, self.capture_ms = 0, 0, 0.0
        self.last_good = time.monotonic()

    @property
    def source(self) -> Source | None:
        return self.grabber.source if self.grabber else None

    @property
    def dropped(self) -> int:
        return self.dropped_closed + (self.grabber.dropped if self.grabber else 0)

    def next(self) -> Frame | None:
        """A readable frame, or None after reacting (opening, waiting, a bad frame dropped)."""
        if self.grabber is None:
            try:
                self._open()
            except SourceUnavailable as e:
                self.waiting(str(e), self.backoff)
                self.backoff = min(self.backoff * 2, self.cfg.retry_max)
            return None
        frame = self._newest()
        if frame is None or valid(frame):
            return frame
        self.malformed += 1
        log.debug("dropped a malformed frame")
        bad_for = time.monotonic() - self.last_good
        if bad_for >= self.cfg.stall_timeout:  # a source of only bad frames is a stall
            self.close()
            self.waiting(f"only unreadable frames for {bad_for:.0f} s", 0.0)
        return None

    def close(self) -> None:
        if self.grabber is not None:
            self.dropped_closed = self.dropped
            if not self.grabber.close():
                log.warning("capture thread is stuck in the camera driver; abandoning it")
            self.grabber = None

    def _open(self) -> None:
        source = open_source(self.cfg.uri, self.cfg)
        log.info("source: %s", source.description)
        self.grabber = LatestFrame(source)
        self.backoff = self.first
        self.last_good = time.monotonic()
        self.opened()

    def _newest(self) -> Frame | None:
        """The newest frame; None (after reacting) if the camera ended, failed or stalled."""
        t0 = time.perf_counter()
        while not self.stop.is_set():
            frame = self.grabber.get(WAIT_SLICE)
            waited = time.perf_counter() - t0
            if frame is not None:
                self.capture_ms = waited * 1000.0
                if valid(frame):
                    self.last_good = time.monotonic()
                return frame
            if self.grabber.ended:
                error = self.grabber.error
                self.close()
                if error is None:
                    log.info("end of the recording")
                    self.stop.set()
                elif isinstance(error, SourceUnavailable):
                    self.waiting(f"camera lost: {error}", 0.0)
                else:
                    raise DeviceError(f"camera failed: {error}")
                return None
            if waited >= self.cfg.stall_timeout:
                self.close()
                self.waiting(f"camera not responding for {waited:.0f} s", 0.0)
                return None
        return None
