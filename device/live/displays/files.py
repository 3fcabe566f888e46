"""`file://DIR` (one PNG per frame), `file://DIR/%05d.jpg` (a pattern) or `file://out.mp4|.avi`.

For demos, reports and tests. Every frame is a write: never the default on an SD card.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from device import DeviceError
from device.config import DisplayConfig
from device.core.images import EXTENSIONS, write_image
from device.live.displays import letterbox, register

CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


class FrameFiles:
    def __init__(self, target: str, opts: DisplayConfig):
        pattern = target if "%" in target else str(Path(target) / "frame_%06d.png")
        try:
            first = pattern % 1
        except (TypeError, ValueError):
            raise DeviceError(
                f"display file://{target}: a pattern needs exactly one number field such as "
                "%06d (write a literal % as %%)"
            ) from None
        if Path(first).suffix.lower() not in EXTENSIONS:  # cv2.haveImageWriter crashes on
            # a name that is not valid UTF-8
            raise DeviceError(f"display file://{target}: name the frames .png or .jpg")
        folder = Path(pattern).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            msg = f"display file://{target}: cannot create {folder}: {e.strerror}"
            raise DeviceError(msg) from None
        self.pattern, self.count = pattern, 0
        self.size = (opts.width, opts.height) if opts.width and opts.height else None
        self.description = f"frames to {pattern}"

    def show(self, canvas: np.ndarray) -> None:
        self.count += 1
        path = self.pattern % self.count
        if not write_image(path, canvas):
            raise DeviceError(f"cannot write {path} (disk full or read-only?)")

    def close(self) -> None:
        pass


class VideoFile:
    def __init__(self, target: str, opts: DisplayConfig):
        self.path, self.fps = Path(target), opts.fps
        self.size = (opts.width, opts.height) if opts.width and opts.height else None
        self.writer: cv2.VideoWriter | None = None
        self.description = f"video {target}"
        if not self.path.parent.is_dir():
            raise DeviceError(f"display file://{target}: folder {self.path.parent} does not exist")
        if not target.isprintable():
            # OpenCV's VideoWriter crashes on a path that is not valid UTF-8
            raise DeviceError(f"display file://{target!r}: the name is not valid UTF-8 text")

    def show(self, canvas: np.ndarray) -> None:
        if self.writer is None:  # the first canvas fixes the video's size
            h, w = canvas.shape[:2]
            self.size = (w, h)
            fourcc = cv2.VideoWriter_fourcc(*CODECS[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise DeviceError(f"cannot write video {self.path}")
        self.writer.write(letterbox(canvas, *self.size))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()  # writes the index: without it the file does not play


def open_files(target: str, opts: DisplayConfig):
    if Path(target).suffix.lower() in CODECS:
        return VideoFile(target, opts)
    return FrameFiles(target, opts)


register("file")(open_files)
