"""Image folders -> labelled, decoded samples.

A dataset is any folder of class folders. Images are decoded once (EXIF orientation applied,
grey/RGBA/palette converted to RGB) and kept in memory: the sets this kit trains on are small,
and decoding once keeps 2-core training CPU-bound on the model, not on PNG decoding.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from device.core.images import EXTENSIONS
from train_host import UserError

log = logging.getLogger(__name__)

POSITIVE_CLASS = "mpox"
NEGATIVE_CLASS = "other"
TASKS = ("binary", "multiclass")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "msid"
# Folders beside the collections that hold no patients: the "cannot judge" gate's development
# set (photos without skin, plain skin), never a collection of lesions
GATE_ONLY = frozenset({"nonskin"})


def key_fraction(key: str) -> float:
    """A number in [0, 1) from a photo's key: folds, copies and splits that never move."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def photo_key(collection: str, path: Path) -> str:
    """What decides a photo's fold, darker copy and split: the same in export, refit and the
    benchmarks."""
    return f"{collection}/{path.parent.name}/{path.name}"


def trains_probe(key: str) -> bool:
    """Half the object photos, by a hash of their key, teach the lesion check; the rest judge it."""
    return key_fraction(key + "/probe") < 0.5


def default_data_dir() -> Path:
    """`MPOX_DATA` if set, else the shared MSID copy beside the checkout."""
    return Path(os.environ.get("MPOX_DATA", DEFAULT_DATA))


@dataclass
class Dataset:
    """Decoded images with labels for one task; `source_labels` keep the folder names."""

    paths: list[Path]
    images: list[np.ndarray]  # HxWx3 uint8 RGB
    labels: np.ndarray  # int64 index into class_names
    source_labels: list[str]
    class_names: list[str]
    task: str
    root: Path
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def positive_index(self) -> int:
        return self.class_names.index(POSITIVE_CLASS)

    def binary_targets(self) -> np.ndarray:
        """1 for the positive class (mpox), 0 otherwise, whatever the task."""
        return (self.labels == self.positive_index).astype(np.int64)

    def subset(self, idx: np.ndarray | list[int]) -> Dataset:
        idx = list(map(int, idx))
        return Dataset(
            paths=[self.paths[i] for i in idx],
            images=[self.images[i] for i in idx],
            labels=self.labels[idx],
            source_labels=[self.source_labels[i] for i in idx],
            class_names=self.class_names,
            task=self.task,
            root=self.root,
        )

    def relpaths(self) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in self.paths]


EXTRA_SIDE = 320  # short side of extra-negative images after loading


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if min(h, w) <= side:
        return image
    s = side / min(h, w)
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def load_collection(root: Path) -> Dataset:
    """A look-alike collection (all negatives), shrunk: its phone crops are up to 900 px and
    the model reads 224, so augmentation and crops stay cheap."""
    part = load_dataset(root, "binary", allow_no_positive=True)
    part.images = [_shrink(im, EXTRA_SIDE) for im in part.images]
    return part


def with_extra_negatives(data: Dataset, roots: list[Path]) -> Dataset:
    """`data` plus every image of the negatives-only collections `roots`, labelled as the
    binary task's negative class (training part only: the split never sees them)."""
    if not roots:
        return data
    if data.task != "binary":
        raise UserError("--extra-negatives works with the binary task only")
    parts = [load_collection(r) for r in roots]
    for r, part in zip(roots, parts, strict=True):
        if part.binary_targets().any():
            raise UserError(f"--extra-negatives {r}: has an mpox folder; only negatives allowed")
    every = [data, *parts]
    return Dataset(
        paths=[p for d in every for p in d.paths],
        images=[im for d in every for im in d.images],
        labels=np.concatenate([d.labels for d in every]),
        source_labels=[s for d in every for s in d.source_labels],
        class_names=data.class_names,
        task=data.task,
        root=data.root,
    )


def load_rgb(path: Path) -> np.ndarray:
    """Decode one image as RGB uint8, EXIF orientation applied, alpha composited on white."""
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def class_names_for(task: str, folders: list[str], allow_no_positive: bool = False) -> list[str]:
    """Class names in output order; `allow_no_positive`: a negatives-only collection (binary)."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if allow_no_positive and task == "binary":
        return [NEGATIVE_CLASS, POSITIVE_CLASS]
    if POSITIVE_CLASS not in folders:
        raise UserError(f"no '{POSITIVE_CLASS}' class folder among {folders}")
    if task == "binary":
        return [NEGATIVE_CLASS, POSITIVE_CLASS]
    return sorted(folders)


def scan(root: Path) -> list[tuple[Path, str]]:
    """(image path, class folder) pairs, sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"data folder not found: {root}")
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    items = [
        (p, d.name)
        for d in folders
        for p in sorted(d.iterdir())
        if p.suffix.lower() in EXTENSIONS and p.is_file()
    ]
    if not items:
        kinds = ", ".join(sorted(EXTENSIONS))
        raise UserError(f"no images ({kinds}) in class folders under {root}")
    return items


def load_dataset(
    root: Path,
    task: str = "binary",
    limit_per_class: int | None = None,
    allow_no_positive: bool = False,
) -> Dataset:
    """Load every readable image; unreadable ones are listed in one warning and skipped.
    `allow_no_positive`: a binary collection without an mpox folder (all negatives)."""
    root = Path(root)
    items = scan(root)
    class_names = class_names_for(task, sorted({c for _, c in items}), allow_no_positive)
    if limit_per_class is not None:
        items = _first_n_per_class(items, limit_per_class)
    paths, images, labels, sources, skipped = [], [], [], [], []
    for path, cls in items:
        try:
            img = load_rgb(path)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            skipped.append(f"{path.relative_to(root)} ({type(exc).__name__})")
            continue
        paths.append(path)
        images.append(img)
        sources.append(cls)
        label = cls if task == "multiclass" else (cls if cls == POSITIVE_CLASS else NEGATIVE_CLASS)
        labels.append(class_names.index(label))
    if skipped:
        log.warning("skipped %d unreadable image(s): %s", len(skipped), "; ".join(skipped))
    if not paths:
        raise UserError(f"none of the images under {root} could be read")
    return Dataset(
        paths=paths,
        images=images,
        labels=np.asarray(labels, dtype=np.int64),
        source_labels=sources,
        class_names=class_names,
        task=task,
        root=root,
        skipped=skipped,
    )


def _first_n_per_class(items: list[tuple[Path, str]], n: int) -> list[tuple[Path, str]]:
    counts: dict[str, int] = {}
    kept = []
    for path, cls in items:
        if counts.get(cls, 0) < n:
            kept.append((path, cls))
            counts[cls] = counts.get(cls, 0) + 1
    return kept
