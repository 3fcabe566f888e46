"""`csi://N`: a Raspberry Pi camera through picamera2 (from apt, imported only when asked for).

A display-size main stream and, where the ISP gives one, a small "lores" stream for inference: the
model then reads a frame the ISP already scaled instead of resizing 640x480 on the CPU. The camera
is stopped and closed on every exit path, so it is never left busy for the next start.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from device import DeviceError
from device.sources import Frame, SourceOptions, SourceUnavailable, register

log = logging.getLogger(__name__)
INSTALL_HINT = "apt install python3-picamera2, and a venv made with --system-site-packages"


def import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError as e:
        raise DeviceError(f"picamera2 is not available ({e}): {INSTALL_HINT}") from None
    return Picamera2


def lores_size(width: int, height: int, small: int) -> tuple[int, int]:
    """The main stream's aspect, short side `small`, even sizes (YUV420 needs them)."""
    scale = small / min(width, height)
    return (round(width * scale / 2) * 2, round(height * scale / 2) * 2)


class PiCamera:
    live = True

    def __init__(self, num: str, opts: SourceOptions):
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

    def _configure(self, opts: SourceOptions) -> bool:
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
            if not self.lores:
                return Frame(self.cam.capture_array("main"))
            (image, yuv), _ = self.cam.capture_arrays(["main", "lores"])
        except Exception as e:  # libcamera reports a lost camera in several ways
            raise SourceUnavailable(f"{self.description}: capture failed: {e}") from None
        return Frame(image, cv2.cvtColor(np.ascontiguousarray(yuv), cv2.COLOR_YUV2BGR_I420))

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


register("csi")(PiCamera)
