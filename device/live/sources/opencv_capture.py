"""OpenCV capture: `v4l2:///dev/videoN` (a USB or V4L2 camera) and `file://clip.mp4` (a recording).

One class for both, because OpenCV's VideoCapture is one API for both; only opening differs.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from device import DeviceError
from device.config import SourceConfig
from device.live.sources import Frame, SourceUnavailable, register


class OpenCVCapture:
    def __init__(self, cap: cv2.VideoCapture, description: str, live: bool, opts: SourceConfig):
        self.cap, self.description, self.live = cap, description, live
        self.loop = opts.loop and not live
        self.period = 1.0 / opts.pace_fps if opts.pace_fps and not live else 0.0
        self.next_time = 0.0

    def read(self) -> Frame | None:
        ok, image = self.cap.read()
        if not ok and self.loop:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self.cap.read()
        if not ok:
            if self.live:
                raise SourceUnavailable(f"{self.description}: no frame (camera unplugged?)")
            return None
        if self.period:
            time.sleep(max(0.0, self.next_time - time.monotonic()))
            self.next_time = time.monotonic() + self.period
        return Frame(image)

    def close(self) -> None:
        self.cap.release()


def open_v4l2(path: str, opts: SourceConfig) -> OpenCVCapture:
    """MJPG where the camera offers it: USB cameras give full frame rate only compressed."""
    if not Path(path).exists():
        raise SourceUnavailable(f"camera {path} not present")
    cap = cv2.VideoCapture(path, cv2.CAP_V4L2)
    if not cap.isOpened():
        raise SourceUnavailable(f"camera {path} cannot be opened (busy, or not a capture device)")
    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, opts.width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, opts.height)
    cap.set(cv2.CAP_PROP_FPS, opts.fps)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver queue short: no stale frames
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    return OpenCVCapture(cap, f"V4L2 camera {path} ({w}x{h})", True, opts)


def open_video(path: str, opts: SourceConfig) -> OpenCVCapture:
    if not Path(path).is_file():
        raise DeviceError(f"source {path}: no such video file")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise DeviceError(f"source {path}: OpenCV cannot decode this video")
    return OpenCVCapture(cap, f"video {path}", False, opts)


register("v4l2")(open_v4l2)
register("file")(open_video)
