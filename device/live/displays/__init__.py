"""Displays, picked by URI from a registry: `window`, `sdl://`, `fb:///dev/fbN`,
`file://DIR|out.mp4`, `null`; `auto` (the default) is the framebuffer where there is one, else
SDL.

A display says what canvas size it wants (`size`, None = the camera frame's), shows a finished BGR
canvas and returns the key the user pressed, if it has a keyboard ('q' quit, 'h' heat-map, ' '
save a case, 'f' freeze).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from device import DeviceError
from device.config import DisplayConfig
from device.options import option
from device.registry import Registry


@dataclass(frozen=True)
class WindowOptions:
    """`[display.window]` and `[display.sdl]`: the desktop displays' own option."""

    fullscreen: bool = field(default=False, metadata=option("fill the screen"))


class Display(Protocol):
    description: str
    size: tuple[int, int] | None  # (width, height) to render at

    def show(self, canvas: np.ndarray) -> str | None: ...

    def close(self) -> None: ...


Factory = Callable[[str, DisplayConfig], Display]
DISPLAYS: Registry[Factory] = Registry(
    "display",
    tuple(f"device.live.displays.{m}" for m in ("files", "framebuffer", "null", "sdl", "window")),
)
register = DISPLAYS.register  # @register("fb", options=FbOptions) in a display's module


def auto_display(fb: Path = Path("/dev/fb0")) -> str:
    """The console framebuffer where the board still has one, else SDL (KMS/DRM, or a desktop):
    a Pi 5 on today's Raspberry Pi OS may have no /dev/fb0 at all."""
    return f"fb://{fb}" if fb.exists() else "sdl://"


def open_display(opts: DisplayConfig) -> Display:
    uri = opts.uri
    scheme, _, rest = (auto_display() if uri == "auto" else uri).partition("://")
    factory = DISPLAYS.get(scheme)
    if factory is None:
        raise DeviceError(f"unknown display {uri!r} (known: {', '.join(DISPLAYS.names())})")
    return factory(rest, opts)


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit `image` into width x height, aspect kept, black bars: a no-op when it already fits."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return out
