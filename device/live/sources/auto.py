"""`auto`: a Jetson's CSI camera if Argus gives a frame, the Pi camera if picamera2 sees one, else
the first V4L2 camera that opens."""

from __future__ import annotations

from pathlib import Path

from device import DeviceError
from device.config import SourceConfig
from device.live.sources import Source, SourceUnavailable, register
from device.live.sources.csi import on_jetson
from device.live.sources.gstreamer import open_argus
from device.live.sources.opencv_capture import open_v4l2
from device.live.sources.picam import PiCamera, import_picamera2

DEV = Path("/dev")


def _picamera_count() -> int:
    try:
        return len(import_picamera2().global_camera_info())
    except DeviceError:  # picamera2 not installed: not a Pi, or a USB-camera kit
        return 0


def open_auto(_: str, opts: SourceConfig) -> Source:
    board_camera = "picamera2: none"
    if on_jetson():  # its CSI camera also shows as /dev/video0, raw Bayer that V4L2 cannot use
        try:
            return open_argus("0", opts)
        except DeviceError as e:
            board_camera = f"Argus: {e}"
    elif _picamera_count():
        return PiCamera("0", opts)
    tried = []
    for dev in sorted(DEV.glob("video*"), key=lambda p: (len(p.name), p.name)):
        try:
            return open_v4l2(str(dev), opts)
        except SourceUnavailable as e:
            tried.append(str(e))
    detail = "; ".join(tried) or "no /dev/video* device"
    raise SourceUnavailable(f"no camera found ({board_camera}; V4L2: {detail})")


register("auto")(open_auto)
