"""Frame sources, picked by URI from a registry (like jetson-inference's videoSource).

`csi://N` the board's camera (picamera2 on a Pi, Argus through GStreamer on a Jetson),
`gst://PIPELINE` any GStreamer pipeline, `v4l2:///dev/videoN` OpenCV V4L2, `file://clip.mp4` a
video, `dir://PATH` or a glob of images, `auto` the first camera found. A source's `read()`
blocks for the next frame and returns None at the end of a recording; a camera that is absent or
lost raises `SourceUnavailable`, which the daemon retries with backoff. Any other `DeviceError`
(a folder that does not exist) is the user's to fix.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from device import DeviceError
from device.config import SourceConfig
from device.registry import Registry


class SourceUnavailable(DeviceError):
    """No camera yet, or it went away: retried, never fatal."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR, what the screen shows
    small: np.ndarray | None = None  # same view, small, BGR: what the model reads if present
    camera: dict | None = None  # lens position and exposure, where the camera reports them


class Source(Protocol):
    description: str
    live: bool  # a camera: frames not taken in time are dropped; a recording: none is skipped

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


Factory = Callable[[str, SourceConfig], Source]
SOURCES: Registry[Factory] = Registry(
    "source",
    tuple(
        f"device.live.sources.{m}"
        for m in ("auto", "csi", "demo", "gstreamer", "image_folder", "opencv_capture")
    ),
)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpg", ".mjpeg", ".h264"}


register = SOURCES.register  # @register("csi", options=CsiOptions) in a source's module


def scheme_of(uri: str) -> tuple[str, str]:
    """`scheme://rest`, or a bare path / glob read as a folder, a glob or a video file."""
    if uri == "auto":
        return "auto", ""
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        return scheme, rest
    try:
        folder = Path(uri).is_dir()
    except OSError:  # a name too long for the file system: the source reports it
        folder = False
    if glob.has_magic(uri) or folder:
        return "dir", uri
    return "file", uri


def open_source(uri: str, opts: SourceConfig) -> Source:
    scheme, rest = scheme_of(uri)
    if scheme == "file" and Path(rest).suffix.lower() not in VIDEO_SUFFIXES:
        scheme = "dir"  # one photo, or a folder or glob written as file://
    factory = SOURCES.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in SOURCES.names() if s != "auto")
        raise DeviceError(f"unknown source {uri!r} (use {known}, a glob or auto)")
    return factory(rest, opts)
