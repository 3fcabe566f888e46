"""`csi://N` on a Raspberry Pi: its camera through picamera2 (from apt, imported only when used).

A display-size main stream and, where the ISP gives one, a small "lores" stream for inference: the
model then reads a frame the ISP already scaled instead of resizing 640x480 on the CPU. The camera
is stopped and closed on every exit path, so it is never left busy for the next start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from device import DeviceError
from device.config import SourceConfig
from device.config.sections import check
from device.live.sources import Frame, SourceUnavailable
from device.options import option

log = logging.getLogger(__name__)
INSTALL_HINT = "apt install python3-picamera2, and a venv made with --system-site-packages"


def import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError as e:
        raise DeviceError(f"picamera2 is not available ({e}): {INSTALL_HINT}") from None
    return Picamera2


# libcamera's AfModeEnum and AfRangeEnum values (picamera2 takes the integers)
AF_MODES = {"manual": 0, "auto": 1, "continuous": 2}
AF_RANGES = {"normal": 0, "macro": 1, "full": 2}


@dataclass(frozen=True)
class CsiOptions:
    """`[source.csi]`: focus for close-ups, on cameras that have autofocus (Camera Module 3)."""

    af_mode: str = field(
        default="continuous",
        metadata=option(
            "autofocus (auto: one cycle at start and before each saved case)",
            choices=tuple(AF_MODES),
        ),
    )
    af_range: str = field(
        default="macro",
        metadata=option("autofocus range: macro for close-ups", choices=tuple(AF_RANGES)),
    )
    lens_position: float = field(
        default=6.0, metadata=option("manual focus in dioptres (1/m): 6 = about 17 cm", lo=0, hi=32)
    )

    def __post_init__(self) -> None:
        check(self, "source.csi")


def focus_controls(available: dict, opts: CsiOptions) -> dict:
    """The focus controls for close-ups that this camera has (Camera Module 3: all; v2 and
    HQ: none, fixed focus). picamera2 leaves autofocus off unless asked."""
    if "AfMode" not in available:
        return {}
    controls = {"AfMode": AF_MODES[opts.af_mode]}
    if "AfRange" in available:
        controls["AfRange"] = AF_RANGES[opts.af_range]
    if opts.af_mode == "manual" and "LensPosition" in available:
        lo, hi, _ = available["LensPosition"]
        controls["LensPosition"] = float(min(max(opts.lens_position, lo), hi))
    return controls


def lores_size(width: int, height: int, small: int) -> tuple[int, int]:
    """The main stream's aspect, short side `small`, even sizes (YUV420 needs them)."""
    scale = small / min(width, height)
    return (round(width * scale / 2) * 2, round(height * scale / 2) * 2)


class PiCamera:
    live = True

    def __init__(self, num: str, opts: SourceConfig):
        Picamera2 = import_picamera2()
        index = int(num or 0)
        cameras = Picamera2.global_camera_info()
        if index >= len(cameras):
            raise SourceUnavailable(f"no CSI camera {index} (found {len(cameras)})")
        try:
            self.cam = Picamera2(camera_num=index)
        except (RuntimeError, OSError) as e:
            raise SourceUnavailable(f"CSI camera {index} cannot be opened: {e}") from None
        try:
            self.lores = self._configure(opts)
            self.cam.start()
        except Exception as e:
            self.close()
            raise SourceUnavailable(f"CSI camera {index} cannot start: {e}") from None
        model = cameras[index].get("Model", "camera")
        self.description = f"CSI camera {index} ({model}, {opts.width}x{opts.height})"
        focus = opts.plugin("csi", CsiOptions)
        self.focus = focus_controls(self.cam.camera_controls, focus)
        if self.focus:
            self.cam.set_controls(self.focus)
            if focus.af_mode == "auto":
                self.autofocus()
        else:
            log.info("%s has no autofocus: fixed focus", self.description)

    def autofocus(self) -> bool:
        """One autofocus cycle (af_mode auto, and before a case is saved); False if it failed
        or the camera has no autofocus."""
        if not self.focus or self.focus.get("AfMode") == AF_MODES["manual"]:
            return False
        self.cam.set_controls({"AfMode": AF_MODES["auto"]})
        ok = bool(self.cam.autofocus_cycle())
        if self.focus["AfMode"] == AF_MODES["continuous"]:
            self.cam.set_controls({"AfMode": AF_MODES["continuous"]})
        return ok

    def hold_exposure(self, hold: bool) -> None:
        """Lock (or free) exposure and white balance, so a saved case is taken as seen."""
        self.cam.set_controls({"AeEnable": not hold, "AwbEnable": not hold})

    def _configure(self, opts: SourceConfig) -> bool:
        """Main + lores if the camera takes that configuration, else main only."""
        main = {"size": (opts.width, opts.height), "format": "RGB888"}  # BGR byte order
        controls = {"FrameRate": opts.fps}
        if opts.small_size:
            lores = {"size": lores_size(opts.width, opts.height, opts.small_size)}
            lores["format"] = "YUV420"
            try:
                config = self.cam.create_video_configuration(
                    main=main, lores=lores, controls=controls, buffer_count=4
                )
                self.cam.align_configuration(config)
                self.cam.configure(config)
                return True
            except (RuntimeError, ValueError) as e:
                log.info("camera gives no small stream (%s): resizing on the CPU", e)
        config = self.cam.create_video_configuration(main=main, controls=controls, buffer_count=4)
        self.cam.configure(config)
        return False

    def read(self) -> Frame:
        try:
            names = ["main", "lores"] if self.lores else ["main"]
            arrays, meta = self.cam.capture_arrays(names)
        except Exception as e:  # libcamera reports a lost camera in several ways
            raise SourceUnavailable(f"{self.description}: capture failed: {e}") from None
        camera = {k: meta[k] for k in ("LensPosition", "ExposureTime", "AnalogueGain") if k in meta}
        if not self.lores:
            return Frame(arrays[0], camera=camera)
        small = cv2.cvtColor(np.ascontiguousarray(arrays[1]), cv2.COLOR_YUV2BGR_I420)
        return Frame(arrays[0], small, camera)

    def close(self) -> None:
        cam = getattr(self, "cam", None)
        if cam is None:
            return
        self.cam = None
        for step in (cam.stop, cam.close):
            try:
                step()
            except Exception as e:  # closing must go on: a half-closed camera stays busy
                log.warning("camera %s failed: %s", step.__name__, e)
