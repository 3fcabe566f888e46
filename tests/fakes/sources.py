"""Test-only sources, registered like the real ones: a camera that is absent for a while and then
drops out once (`flaky://`), and one that hangs inside the driver (`stall://`)."""

from __future__ import annotations

import threading
import time

import numpy as np

from device.config import SourceConfig
from device.live.sources import Frame, SourceUnavailable, register


class Flaky:
    """Absent for `FAIL_OPENS` opens, then gives `FRAMES_BEFORE_LOSS` frames, is lost, recovers."""

    FAIL_OPENS = 2
    FRAMES_BEFORE_LOSS = 5
    opens = 0

    live = True

    def __init__(self, _: str, opts: SourceConfig):
        Flaky.opens += 1
        if Flaky.opens <= self.FAIL_OPENS:
            raise SourceUnavailable(f"fake camera absent (open {Flaky.opens})")
        self.shape, self.n, self.description = (opts.height, opts.width, 3), 0, "flaky camera"

    def read(self) -> Frame:
        time.sleep(0.01)
        self.n += 1
        if Flaky.opens == self.FAIL_OPENS + 1 and self.n > self.FRAMES_BEFORE_LOSS:
            raise SourceUnavailable("fake camera unplugged")
        return Frame(np.full(self.shape, 100 + self.n % 100, np.uint8))

    def close(self) -> None:
        pass


class Stall:
    """Frames for `STALL_AFTER` seconds, then read() blocks until `RELEASE` is set."""

    STALL_AFTER = 1.0
    RELEASE = threading.Event()
    live = True

    def __init__(self, arg: str, opts: SourceConfig):
        self.start, self.shape = time.monotonic(), (opts.height, opts.width, 3)
        self.stall_after = float(arg) if arg else self.STALL_AFTER
        self.description = "camera that hangs"

    def read(self) -> Frame:
        time.sleep(0.02)
        if time.monotonic() - self.start > self.stall_after:
            self.RELEASE.wait()
        return Frame(np.full(self.shape, 120, np.uint8))

    def close(self) -> None:
        pass


register("flaky")(Flaky)
register("stall")(Stall)
