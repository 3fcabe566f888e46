"""`fb:///dev/fb0`: the Linux framebuffer, so the kit needs no X or Wayland (a console kiosk).

Geometry, bits per pixel and line stride come from sysfs (/sys/class/graphics/fbN) unless the
config sets them; a plain file stands in for the device in tests. The canvas is letterboxed into
the screen and written through a numpy memmap in RGB565 or XRGB8888.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from device import DeviceError
from device.config import DisplayConfig
from device.live.displays import letterbox, register
from device.options import option

SYSFS = Path("/sys/class/graphics")


@dataclass(frozen=True)
class FbOptions:
    """`[display.fb]`: what sysfs says unless set (a board whose driver reports nothing)."""

    bpp: int = field(
        default=0,
        metadata=option("bits per pixel (0 = from sysfs)", choices=(0, 16, 32), flag="fb_bpp"),
    )


def sysfs_geometry(device: Path, sysfs: Path = SYSFS) -> tuple[int, int, int, int] | None:
    """(width, height, bits per pixel, stride in bytes) as the kernel reports them, or None."""
    node = sysfs / device.name
    try:
        w, h = (int(v) for v in (node / "virtual_size").read_text().strip().split(","))
        bpp = int((node / "bits_per_pixel").read_text())
        stride_file = node / "stride"
        stride = int(stride_file.read_text()) if stride_file.exists() else w * bpp // 8
    except (OSError, ValueError):
        return None
    return w, h, bpp, stride


def to_pixels(canvas: np.ndarray, bpp: int) -> np.ndarray:
    """BGR -> the framebuffer's bytes per row: RGB565 (little-endian) or XRGB8888 (B, G, R, X)."""
    if bpp == 16:
        return cv2.cvtColor(canvas, cv2.COLOR_BGR2BGR565)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2BGRA)


class Framebuffer:
    def __init__(self, path: str, opts: DisplayConfig, sysfs: Path = SYSFS):
        self.path = Path(path or "/dev/fb0")
        if not self.path.exists():
            raise DeviceError(
                f"no framebuffer {self.path} (no screen, or a desktop owns it): "
                "use --display window, file://DIR or null"
            )
        w, h, bpp, stride = self._geometry(opts, sysfs)
        if bpp not in (16, 32):
            raise DeviceError(f"{self.path}: {bpp} bits per pixel is not supported (16 or 32)")
        self.size, self.bpp, self.stride = (w, h), bpp, stride
        try:
            if self.path.is_file() and self.path.stat().st_size < h * stride:
                with self.path.open("r+b") as f:  # a plain file standing in for the device
                    f.truncate(h * stride)
            self.mem = np.memmap(self.path, dtype=np.uint8, mode="r+", shape=(h, stride))
        except OSError as e:
            raise DeviceError(f"cannot open framebuffer {self.path}: {e.strerror}") from None
        self.description = f"framebuffer {self.path} ({w}x{h}, {bpp} bpp)"

    def _geometry(self, opts: DisplayConfig, sysfs: Path) -> tuple[int, int, int, int]:
        found = sysfs_geometry(self.path, sysfs)
        want = opts.plugin("fb", FbOptions).bpp
        if found is None and not (opts.width and opts.height and want):
            raise DeviceError(
                f"{self.path}: no geometry in {sysfs / self.path.name}; "
                "set [display] width and height and [display.fb] bpp"
            )
        w, h, bpp, stride = found or (0, 0, 0, 0)
        w, h, bpp = opts.width or w, opts.height or h, want or bpp
        return w, h, bpp, max(stride, w * bpp // 8)

    def show(self, canvas: np.ndarray) -> None:
        pixels = to_pixels(letterbox(canvas, *self.size), self.bpp)
        row = self.size[0] * self.bpp // 8
        self.mem[:, :row] = pixels.reshape(self.size[1], row)
        return None

    def close(self) -> None:
        self.mem.flush()
        del self.mem


register("fb", options=FbOptions)(Framebuffer)
