"""Stored photos for `classify`: find them under paths, decode them like the host does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def find_images(paths: list[Path]) -> Iterator[Path]:
    """Files as given (any extension, so a wrong one is reported), folders recursively, sorted."""
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix.lower() in EXTENSIONS)
        else:
            yield p


class UnreadableImage(Exception):
    pass


def read_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB: EXIF orientation applied, alpha composited on white (as train_host)."""
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise UnreadableImage(e.strerror or str(e)) from None
    raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if raw is None:
        raise UnreadableImage("not a readable image")
    if raw.ndim == 3 and raw.shape[2] == 4:
        rgba = raw.astype(np.float32) / (65535.0 if raw.dtype == np.uint16 else 255.0)
        alpha = rgba[..., 3:]
        bgr = rgba[..., :3] * alpha + (1.0 - alpha)
        return cv2.cvtColor(np.uint8(np.round(bgr * 255.0)), cv2.COLOR_BGR2RGB)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # applies EXIF orientation
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
