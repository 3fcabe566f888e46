"""Stored photos for `classify` and `dir://`: find them under paths, decode them like the host.

Photos come from anywhere (a USB stick, a phone), so reading is defensive: only regular files
are opened (a FIFO named .png would block for ever), the pixel count is read from the header
before decoding (a 1 MB PNG can unpack to 3.6 GB), each image is decoded once, and 16-bit,
integer and float images are scaled to 8 bits by what their type means.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from device.config import MAX_PIXELS

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
TINY = 32  # below this many pixels on a side a verdict means little: warn


class UnreadableImage(Exception):
    pass


@dataclass(frozen=True)
class Found:
    """A path to screen, or a problem met while looking (an unsearchable folder, a bad name)."""

    path: Path
    problem: str | None = None


def find_images(paths: list[Path]) -> Iterator[Found]:
    """Files as given (any extension, so a wrong one is reported), folders recursively, sorted;
    a folder that cannot be listed is reported and the walk goes on."""
    for p in paths:
        try:
            is_dir = p.is_dir()
        except OSError as e:
            yield Found(p, e.strerror or str(e))
            continue
        if not is_dir:
            yield Found(p)
            continue
        problems: list[Found] = []
        found = []
        for folder, dirs, files in os.walk(p, onerror=_collect(problems)):
            dirs.sort()
            found += [Path(folder, f) for f in files if Path(f).suffix.lower() in EXTENSIONS]
        yield from problems
        yield from (Found(f) for f in sorted(found))


def _collect(problems: list[Found]):
    def onerror(e: OSError) -> None:
        problems.append(Found(Path(e.filename), e.strerror or str(e)))

    return onerror


def _header(path: Path) -> tuple[tuple[int, int] | None, int]:
    """((width, height), EXIF orientation) from one header read, no pixels decoded; (None, 1)
    when Pillow cannot tell (OpenCV may still decode it)."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the kit checks itself
    try:
        with Image.open(path) as im:
            try:
                tag = int(im.getexif().get(0x0112, 1))
            except (OSError, ValueError, TypeError):
                tag = 1
            return im.size, tag
    except (UnidentifiedImageError, OSError, ValueError):
        return None, 1
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _orient(img: np.ndarray, tag: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1-8), as Pillow's exif_transpose does."""
    if tag in (2, 4, 5, 7):
        img = img[:, ::-1]
    turns = {3: 2, 4: 2, 5: 1, 6: 3, 7: 3, 8: 1}.get(tag, 0)
    return np.ascontiguousarray(np.rot90(img, turns))


def to_unit(a: np.ndarray) -> np.ndarray:
    """Any pixel type to float32 in [0, 1] by what the type means: 8/16-bit by their range,
    float as [0, 1] (brighter values clip), other integers by the largest value present."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    f = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(f, 0.0, 1.0)
    top = float(f.max()) if f.size else 0.0
    scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return np.clip(f / scale, 0.0, 1.0)


def to_rgb8(raw: np.ndarray) -> np.ndarray:
    """OpenCV's decoded array (grey, BGR or BGRA, any depth) -> HxWx3 uint8 RGB, alpha
    composited on white as the host does."""
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.dtype == np.uint8 and raw.shape[2] in (1, 3):
        code = cv2.COLOR_GRAY2RGB if raw.shape[2] == 1 else cv2.COLOR_BGR2RGB
        return cv2.cvtColor(raw, code)
    unit = to_unit(raw)
    if unit.shape[2] == 4:
        alpha = unit[..., 3:]
        unit = unit[..., :3] * alpha + (1.0 - alpha)
    elif unit.shape[2] == 2:  # grey + alpha
        unit = np.repeat(unit[..., :1] * unit[..., 1:] + (1.0 - unit[..., 1:]), 3, axis=2)
    elif unit.shape[2] == 1:
        unit = np.repeat(unit, 3, axis=2)
    bgr = np.uint8(np.round(unit[..., :3] * 255.0))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """HxWx3 uint8 RGB: EXIF orientation applied, alpha composited on white (as train_host)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UnreadableImage(e.strerror or str(e)) from None
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableImage("not a regular file")
    size, orientation = _header(path)
    if size and size[0] * size[1] > max_pixels:
        w, h = size
        raise UnreadableImage(f"{w}x{h} pixels is more than the limit of {max_pixels:,}")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise UnreadableImage(e.strerror or str(e)) from None
    raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if raw is None or raw.size == 0:
        raise UnreadableImage("not a readable image")
    if raw.shape[0] * raw.shape[1] > max_pixels:  # a format Pillow could not size
        raise UnreadableImage(f"{raw.shape[1]}x{raw.shape[0]} pixels is more than the limit")
    return _orient(to_rgb8(raw), orientation)


def tiny(image: np.ndarray) -> bool:
    return min(image.shape[:2]) < TINY
