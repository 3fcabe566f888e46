"""`null`: shows nothing (benchmarks, headless tests, a kit that only logs)."""

from __future__ import annotations

import numpy as np

from device.config import DisplayConfig
from device.live.displays import register


class NullDisplay:
    description = "no display"

    def __init__(self, _: str, opts: DisplayConfig):
        self.size = (opts.width, opts.height) if opts.width and opts.height else None

    def show(self, canvas: np.ndarray) -> None:
        return None

    def close(self) -> None:
        pass


register("null")(NullDisplay)
