"""`dir://PATH`, a glob, or one photo: stored images as a frame stream (demo, tests, replay)."""

from __future__ import annotations

import glob
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from device import DeviceError
from device.images import EXTENSIONS, UnreadableImage, read_rgb
from device.sources import Frame, SourceOptions, SourceUnavailable, register

log = logging.getLogger(__name__)


class ImageFolder:
    live = False

    def __init__(self, pattern: str, opts: SourceOptions):
        self.paths, self.pattern = _expand(pattern), pattern
        self.max_pixels = opts.max_pixels
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
        try:
            image = cv2.cvtColor(read_rgb(path, self.max_pixels), cv2.COLOR_RGB2BGR)
        except UnreadableImage as e:
            if not path.parent.exists():
                raise SourceUnavailable(f"{path.parent} is gone") from None
            # refused once, then left out: a file that cannot be read now will not be later
            log.warning("source: %s left out: %s", path, e)
            self.paths.remove(path)
            self.next_index -= 1
            if not self.paths:
                raise DeviceError(
                    f"source {self.pattern}: none of its images can be read"
                ) from None
            return Frame(np.empty((0, 0, 3), np.uint8))  # dropped and counted by the loop
        return Frame(image)

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
