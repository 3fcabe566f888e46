"""A fake picamera2 with the real library's method names, arguments and call order.

Tests put this folder first on sys.path. Every call is appended to `CALLS`; `FAIL` names a method
that raises (as libcamera does for a busy or unplugged camera).
"""

from __future__ import annotations

import numpy as np

CALLS: list[tuple] = []
FAIL: set[str] = set()
CAMERAS = [{"Model": "imx708", "Location": 2, "Rotation": 0, "Id": "/base/soc/i2c0mux/imx708@1a"}]
# Camera Module 3 (imx708): (min, max, default) as picamera2's camera_controls gives them; a
# fixed-focus module (v2, HQ) has no Af* / LensPosition entries
CONTROLS = {
    "AfMode": (0, 2, 0),
    "AfRange": (0, 2, 0),
    "AfTrigger": (0, 1, 0),
    "LensPosition": (0.0, 15.0, 1.0),
    "AeEnable": (False, True, True),
    "AwbEnable": (False, True, True),
    "ExposureTime": (1, 66666, 20000),
}


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
        self.camera_controls = dict(CONTROLS)
        self.controls: dict = {}

    def set_controls(self, controls: dict) -> None:
        _call("set_controls", dict(controls))
        unknown = set(controls) - set(self.camera_controls)
        assert not unknown, f"libcamera rejects controls {unknown} on this camera"
        self.controls.update(controls)

    def autofocus_cycle(self) -> bool:
        _call("autofocus_cycle")
        assert self.started and self.controls.get("AfMode") == 1, (
            "autofocus_cycle needs AfMode Auto"
        )
        self.controls["LensPosition"] = 7.5
        return True

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
        meta = {"SensorTimestamp": self.frame, "ExposureTime": 16000, "AnalogueGain": 2.0}
        if "LensPosition" in self.camera_controls:
            meta["LensPosition"] = self.controls.get("LensPosition", 1.0)
        return [self._image(n) for n in names], meta

    def stop(self) -> None:
        _call("stop")
        self.started = False

    def close(self) -> None:
        _call("close")
