"""`sdl://`: the whole screen through SDL2 (pygame-ce), for boards without `/dev/fb0`.

SDL picks its video driver from the session: KMS/DRM straight on the display when there is no
desktop (Raspberry Pi OS Lite on a Pi 5: no compositor, no framebuffer emulation needed), Wayland
on today's desktop image (labwc) or under the Cage kiosk compositor, X11 elsewhere. `sdl://kmsdrm`,
`sdl://wayland` or `sdl://x11` forces one. Keys as the window's: q quit, h heat-map, space save,
f freeze.

Vsync is off: the kit paces itself, and a compositor that stops sending frame callbacks (an output
switched off) must not stall the frame loop and with it the watchdog.
"""

from __future__ import annotations

import ctypes
import os

import cv2
import numpy as np

from device import DeviceError
from device.config import DisplayConfig
from device.live.displays import WindowOptions, letterbox, register

KEYS = {"q": "q", "escape": "q", "h": "h", "space": " ", "f": "f"}
DRIVERS = ("", "kmsdrm", "wayland", "x11")
# SDL 2.32 loads this at run time and, when it is missing, calls a null pointer in set_mode
WAYLAND_EGL = "libwayland-egl.so.1"


def _check_wayland_egl() -> None:
    try:
        ctypes.CDLL(WAYLAND_EGL)
    except OSError:
        raise DeviceError(
            f"display sdl://wayland: {WAYLAND_EGL} is missing, SDL cannot open a Wayland "
            "window without it (apt install libwayland-egl1)"
        ) from None


def _pygame(driver: str):
    if driver:  # else SDL's own order: wayland or x11 in a session, else kmsdrm
        os.environ["SDL_VIDEODRIVER"] = driver
    os.environ.setdefault("SDL_RENDER_VSYNC", "0")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError:
        raise DeviceError(
            "display sdl://: pygame-ce is not installed (pip install pygame-ce)"
        ) from None
    return pygame


class SdlScreen:
    def __init__(self, target: str, opts: DisplayConfig):
        driver = target.strip("/")
        if driver not in DRIVERS:
            raise DeviceError(
                f"display sdl://{target}: the driver is one of {', '.join(DRIVERS[1:])}"
            )
        self.pg = pg = _pygame(driver)
        try:
            pg.display.init()
            if pg.display.get_driver() == "wayland":
                _check_wayland_egl()
            want = (opts.width, opts.height) if opts.width and opts.height else (0, 0)
            fullscreen = opts.plugin("sdl", WindowOptions).fullscreen
            flags = pg.FULLSCREEN if fullscreen or want == (0, 0) else 0
            self.screen = pg.display.set_mode(want, flags)
        except DeviceError:
            pg.display.quit()
            raise
        except pg.error as e:
            pg.display.quit()
            raise DeviceError(
                f"display sdl://{target}: {e} (no screen SDL can use: KMS/DRM needs access to "
                "/dev/dri, a desktop needs WAYLAND_DISPLAY or DISPLAY)"
            ) from None
        pg.display.set_caption("mpox-screen")
        pg.mouse.set_visible(False)
        self.size = self.screen.get_size()
        self.description = f"SDL {pg.display.get_driver()} {self.size[0]}x{self.size[1]}"

    def show(self, canvas: np.ndarray) -> str | None:
        w, h = self.size
        rgb = cv2.cvtColor(letterbox(canvas, w, h), cv2.COLOR_BGR2RGB)
        self.screen.blit(self.pg.image.frombuffer(rgb.tobytes(), (w, h), "RGB"), (0, 0))
        self.pg.display.flip()
        key = None
        for event in self.pg.event.get():
            if event.type == self.pg.QUIT:
                key = "q"
            elif event.type == self.pg.KEYDOWN:
                key = KEYS.get(self.pg.key.name(event.key), key)
        return key

    def close(self) -> None:
        self.pg.display.quit()


register("sdl", options=WindowOptions)(SdlScreen)
