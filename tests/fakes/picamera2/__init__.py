"""A fake picamera2 with the real library's method names, arguments and call order.

Tests put this folder first on sys.path. Every call is appended to `CALLS`; `FAIL` names a method
that raises (as libcamera does for a busy or unplugged camera).
"""

from __future__ import annotations

import numpy as np

CALLS: list[tuple] = []
FAIL: set[str] = set()
CAMERAS = [{"Model": "imx708", "Location": 2, "Rotation": 0, "Id": "/base/soc/i2c0mux/imx708@1a"}]


def _call(name: str, *args, **kwargs) -> None:
    CALLS.append((name, args, kwargs))
    if name in FAIL:
        raise RuntimeError(f"fake libcamera: {name} failed")


class Picamera2:
    @staticmethod
    def global_camera_info() -> list[dict]:
        _call("global_camera_info")
        return list(CAMERAS)

    def __init__(self, camera_num: int = 0):
        _call("__init__", camera_num=camera_num)
        self.config: dict | None = None
        self.started = False
        self.frame = 0

    def create_video_configuration(self, main=None, lores=None, controls=None, buffer_count=6):
        _call("create_video_configuration", main=main, lores=lores, controls=controls)
        if lores is not None and "lores" in FAIL:
            raise RuntimeError("fake libcamera: no lores stream on this camera")
        return {"main": dict(main or {}), "lores": dict(lores) if lores else None}

    def align_configuration(self, config: dict) -> None:
        _call("align_configuration")

    def configure(self, config: dict) -> None:
        _call("configure", config)
        self.config = config

    def start(self) -> None:
        _call("start")
        assert self.config is not None, "picamera2 needs configure() before start()"
        self.started = True

    def _image(self, stream: str) -> np.ndarray:
        w, h = self.config[stream]["size"]
        self.frame += 1
        if stream == "lores":  # YUV420 planar: h * 3/2 rows of w bytes
            yuv = np.full((h * 3 // 2, w), 128, np.uint8)
            yuv[:h] = 90 + self.frame % 50
            return yuv
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = (110, 140, 200)  # BGR byte order, like picamera2's "RGB888"
        return img

    def capture_array(self, name: str = "main") -> np.ndarray:
        _call("capture_array", name)
        assert self.started, "capture before start()"
        return self._image(name)

    def capture_arrays(self, names: list[str]) -> tuple[list[np.ndarray], dict]:
        _call("capture_arrays", list(names))
        assert self.started, "capture before start()"
        return [self._image(n) for n in names], {"SensorTimestamp": self.frame}

    def stop(self) -> None:
        _call("stop")
        self.started = False

    def close(self) -> None:
        _call("close")
