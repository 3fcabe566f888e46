"""`dir://PATH`, a glob, or one photo: stored images as a frame stream (demo, tests, replay)."""

from __future__ import annotations

import glob
import time
from pathlib import Path

import cv2
import numpy as np

from device import DeviceError
from device.images import EXTENSIONS
from device.sources import Frame, SourceOptions, register


class ImageFolder:
    live = False

    def __init__(self, pattern: str, opts: SourceOptions):
        self.paths = _expand(pattern)
        self.description = f"{len(self.paths)} images from {pattern}"
        self.loop, self.period = opts.loop, (1.0 / opts.pace_fps if opts.pace_fps else 0.0)
        self.next_index, self.next_time = 0, 0.0

    def read(self) -> Frame | None:
        if self.next_index >= len(self.paths):
            if not self.loop:
                return None
            self.next_index = 0
        path = self.paths[self.next_index]
        self.next_index += 1
        if self.period:
            time.sleep(max(0.0, self.next_time - time.monotonic()))
            self.next_time = time.monotonic() + self.period
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        # an unreadable file becomes an empty frame, which the frame loop drops and counts
        return Frame(image if image is not None else np.empty((0, 0, 3), np.uint8))

    def close(self) -> None:
        pass


def _expand(pattern: str) -> list[Path]:
    if glob.has_magic(pattern):
        paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    elif Path(pattern).is_dir():
        paths = sorted(p for p in Path(pattern).rglob("*") if p.suffix.lower() in EXTENSIONS)
    elif Path(pattern).is_file():
        paths = [Path(pattern)]
    else:
        raise DeviceError(f"source {pattern}: no such file or folder")
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise DeviceError(f"source {pattern}: no images found")
    return paths


register("dir")(ImageFolder)
