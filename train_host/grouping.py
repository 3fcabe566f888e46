"""Near-duplicate groups and grouped, stratified splits.

MSID is web-scraped: the same photo appears resized, re-encoded or mirrored. Copies of one photo
on both sides of a split inflate every score, so images are grouped by perceptual hash and splits
keep each group on one side.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image
from sklearn.model_selection import StratifiedGroupKFold

from train_host import UserError

HASH_BITS = 64
DEFAULT_MAX_DISTANCE = 10


def phash_bits(image: np.ndarray) -> np.ndarray:
    """64-bit pHash of the image and of its mirror, as a (2, 64) bool array."""
    pil = Image.fromarray(image)
    hashes = [imagehash.phash(pil), imagehash.phash(pil.transpose(Image.FLIP_LEFT_RIGHT))]
    return np.stack([h.hash.reshape(-1) for h in hashes])


def near_duplicate_groups(
    images: list[np.ndarray], max_distance: int = DEFAULT_MAX_DISTANCE
) -> np.ndarray:
    """Group id per image: connected components of 'pHash Hamming distance <= max_distance'
    (mirrored copies included)."""
    bits = np.stack([phash_bits(im) for im in images])  # (n, 2, 64)
    plain = bits[:, 0].astype(np.int32)
    mirror = bits[:, 1].astype(np.int32)
    # Hamming distance as (a xor b) summed = a.(1-b) + (1-a).b, via matrix products.
    dist = plain @ (1 - plain).T + (1 - plain) @ plain.T
    dist_mirror = plain @ (1 - mirror).T + (1 - plain) @ mirror.T
    close = np.minimum(dist, dist_mirror) <= max_distance
    return _components(close)


def _components(adjacency: np.ndarray) -> np.ndarray:
    n = len(adjacency)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(adjacency, 1)), strict=True):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)])
    _, group_ids = np.unique(roots, return_inverse=True)
    return group_ids


def grouped_folds(
    labels: np.ndarray, groups: np.ndarray, k: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, held-out) index pairs, stratified by label, never splitting a group."""
    n_groups = len(np.unique(groups))
    if k < 2 or k > n_groups:
        raise UserError(f"k-fold needs 2 <= k <= {n_groups} groups, got k={k}")
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(sgkf.split(np.zeros(len(labels)), labels, groups))


def holdout(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One grouped, stratified (rest, held-out) split holding out about `fraction`."""
    if not 0.0 < fraction < 0.5:
        raise UserError(f"held-out fraction must be in (0, 0.5), got {fraction}")
    return grouped_folds(labels, groups, round(1 / fraction), seed)[0]


@dataclass
class Split:
    """Which file went where, written with every run so any result can be traced and repeated."""

    files: list[str]
    groups: list[int]
    train: list[int]
    val: list[int]
    test: list[int]
    seed: int
    max_hash_distance: int
    method: str = "stratified group split on 64-bit pHash near-duplicate groups (mirror-aware)"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    def part(self, data, *names: str):
        """The dataset's images of split parts `names` ("train", "val", "test"), by file name:
        the one way every command picks a split's images."""
        index = {f: i for i, f in enumerate(data.relpaths())}
        missing = [f for f in self.files if f not in index]
        if missing:
            raise UserError(
                f"the split lists {len(missing)} files not in {data.root}: {missing[0]}"
            )
        return data.subset([index[self.files[i]] for n in names for i in getattr(self, n)])

    @classmethod
    def load(cls, path: Path) -> Split:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"cannot read split file {path}: {exc}") from exc


def make_split(
    files: list[str],
    labels: np.ndarray,
    groups: np.ndarray,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    max_hash_distance: int = DEFAULT_MAX_DISTANCE,
    pool: np.ndarray | None = None,
    test: np.ndarray | None = None,
) -> Split:
    """Train/val/test by group. With `pool`/`test` given (a CV fold), only val is carved out."""
    if pool is None:
        if test_fraction > 0:
            pool, test = holdout(labels, groups, test_fraction, seed)
        else:
            pool, test = np.arange(len(labels)), np.array([], dtype=int)
    rest, val = holdout(labels[pool], groups[pool], val_fraction, seed + 1)
    return Split(
        files=files,
        groups=[int(g) for g in groups],
        train=sorted(int(i) for i in pool[rest]),
        val=sorted(int(i) for i in pool[val]),
        test=sorted(int(i) for i in test),
        seed=seed,
        max_hash_distance=max_hash_distance,
    )
