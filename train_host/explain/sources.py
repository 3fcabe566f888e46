"""The images to explain and, where a folder of class folders gives it, each one's true class."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from device.core.images import find_images
from train_host import UserError
from train_host.data import NEGATIVE_CLASS, load_rgb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    path: Path
    name: str  # unique, file-system safe: the panel's file name without .png
    label: str | None  # true class in the model's class names, None when unknown


def label_for(folder: str, class_names: list[str], positive: str) -> str | None:
    """A class folder's name as one of the model's classes: itself, or for a binary model
    (classes [other, positive]) any folder but the positive one counts as `other`."""
    if folder in class_names:
        return folder
    if len(class_names) == 2 and NEGATIVE_CLASS in class_names and positive in class_names:
        return NEGATIVE_CLASS
    return None


def collect(paths: list[Path], class_names: list[str], positive: str) -> list[Item]:
    """Files as given, folders recursively. An image at FOLDER/CLASS/file gets CLASS's label."""
    items, seen = [], set()
    for root in paths:
        if not root.exists():
            raise UserError(f"no such file or folder: {root}")
        for found in find_images([root]):
            f = found.path
            if found.problem or f.resolve() in seen:
                continue
            seen.add(f.resolve())
            rel = f.relative_to(root) if root.is_dir() else Path(f.name)
            label = None
            if len(rel.parts) == 2:
                label = label_for(rel.parts[0], class_names, positive)
            stem = "__".join(rel.with_suffix("").parts)
            items.append(Item(f, stem, label))
    if not items:
        raise UserError(f"no images (JPEG, PNG, BMP, WebP, TIFF) in {', '.join(map(str, paths))}")
    used: dict[str, int] = {}
    out = []
    for it in items:  # the same relative name under two roots: keep both panels
        k = used.get(it.name, 0)
        used[it.name] = k + 1
        out.append(Item(it.path, it.name if k == 0 else f"{it.name}_{k}", it.label))
    return out


def read(path: Path) -> np.ndarray | None:
    """RGB uint8 as the host decodes it, or None (logged) for an unreadable file."""
    try:
        return load_rgb(path)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        log.warning("skipped unreadable image %s (%s)", path, type(exc).__name__)
        return None


class Images(Sequence):
    """Decoded on access, so a large folder is never held in memory at once."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        return load_rgb(self.paths[i])
