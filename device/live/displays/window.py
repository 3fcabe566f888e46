"""`window`: an OpenCV HighGUI window on a desktop (keys: q quit, h heat-map, space save, f freeze).

Two ways a window can kill the kit are refused with a message instead: a GUI build of OpenCV with
no desktop aborts the whole process (Qt, SIGABRT), and the headless build has no HighGUI at all.
"""

from __future__ import annotations

import os
import re

import cv2
import numpy as np

from device import DeviceError
from device.config import DisplayConfig
from device.live.displays import WindowOptions, register

TITLE = "mpox-screen"
KEYS = {ord("q"): "q", 27: "q", ord("h"): "h", ord(" "): " ", ord("f"): "f"}


def gui_backend(build_info: str) -> str:
    """The HighGUI backend OpenCV was built with ('NONE' for opencv-python-headless)."""
    m = re.search(r"^\s*GUI:\s*(\S+)", build_info, re.MULTILINE)
    return m.group(1) if m else "NONE"


def why_no_window(environ=os.environ, build_info: str | None = None) -> str | None:
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return "no desktop (DISPLAY and WAYLAND_DISPLAY unset): use display fb:///dev/fb0"
    if gui_backend(build_info or cv2.getBuildInformation()) == "NONE":
        return (
            "this OpenCV has no GUI (opencv-python-headless): install opencv-python instead, "
            "or use display fb:///dev/fb0"
        )
    return None


class Window:
    def __init__(self, _: str, opts: DisplayConfig):
        reason = why_no_window()
        if reason:
            raise DeviceError(f"cannot open a window: {reason}")
        self.size = (opts.width, opts.height) if opts.width and opts.height else None
        # no Qt toolbar: the kit's screen is the whole window
        cv2.namedWindow(TITLE, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        fullscreen = opts.plugin("window", WindowOptions).fullscreen
        self.fullscreen, self.sized = fullscreen, False
        if fullscreen:
            cv2.setWindowProperty(TITLE, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        self.description = "window" + (" (fullscreen)" if fullscreen else "")

    def show(self, canvas: np.ndarray) -> str | None:
        if not (self.fullscreen or self.sized):  # one screen pixel per canvas pixel
            cv2.resizeWindow(TITLE, canvas.shape[1], canvas.shape[0])
            self.sized = True
        cv2.imshow(TITLE, canvas)
        key = cv2.waitKey(1)
        if cv2.getWindowProperty(TITLE, cv2.WND_PROP_VISIBLE) < 1:
            return "q"  # closed with the mouse
        return KEYS.get(key & 0xFF) if key >= 0 else None

    def close(self) -> None:
        cv2.destroyAllWindows()
        cv2.waitKey(1)


register("window", options=WindowOptions)(Window)
