"""`csi://N`: the board's own camera, through what its maker supports: on a Jetson the Argus ISP
(GStreamer's `nvarguscamerasrc`, `gstreamer.py`), elsewhere picamera2 (a Raspberry Pi,
`picam.py`). The `[source.csi]` focus options are picamera2's (Argus has no autofocus modules)."""

from __future__ import annotations

from device.config import SourceConfig
from device.live import board
from device.live.sources import Source, register
from device.live.sources.picam import CsiOptions, PiCamera


def on_jetson() -> bool:
    return board.l4t() is not None


def open_csi(num: str, cfg: SourceConfig) -> Source:
    if on_jetson():
        from device.live.sources.gstreamer import open_argus

        return open_argus(num, cfg)
    return PiCamera(num, cfg)


register("csi", options=CsiOptions)(open_csi)
