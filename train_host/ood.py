"""Fit the "cannot judge" score of `device.core.ood` (manifest `ood` version 2).

"A skin-lesion photo" is what the kit must judge, whatever the collection and the skin tone. The
reference set is therefore the lesion photos of every collection: MSID's training photos and
every photo of the look-alike collections (bites, scabies, impetigo...: the gate is not the
disease classifier, so negatives belong in it), each whole, as its best kit-framed crops and as
a darker-skinned copy (Lab lightness scaled down: MSID and most web collections under-represent
dark skin). Version 1 fitted MSID's training photos alone and refused dark skin ten times as
often as light (issue 28). Per layer the centre and a Ledoit-Wolf covariance. The limit comes
from out-of-fold scores (five folds of photos by a hash of their path, each scored by a fit
without it): the highest 95th percentile per kind (whole, crop, darker) pooled, and of the
kit-framed crops and darker copies in each collection, so that about 1 in 20 of what the kit
sees, on any skin tone, is refused in any collection, MSID (the only source of mpox photos)
included. Whole photos are held to it pooled only: MSID's whole web photos (bodies, faces) have
the heaviest tail (their own 95th percentile 1.97 against at most 1.63 for every other group on
the default), and a limit that kept them at 5 % let 24 % of plain-skin photos be called "Mpox
likely" (12 % at the limit 1.63, 8 % with the MSID-only gate). A single held-out fifth gave
limits 1.61 and 1.79 for two draws of the same photos; out-of-fold scores use every photo.
Leave-one-collection-out judgement of this fit: `train_host/lesion_gate.py` (`mpox-train gate`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from device.core.ood import OodModel
from device.core.skin import skin_fraction
from device.core.skin_tone import darken
from train_host.models.camgraph import CamExport
from train_host.preprocess import PreprocessSpec, preprocess

REF_PERCENTILE = 99.0  # per-layer scale: the distance 99 % of reference photos stay under
LIMIT_PERCENTILE = 95.0  # of out-of-fold reference scores, per kind: the refusal limit
FOLDS = 5  # of reference photos (by path hash) for the out-of-fold scores
MIN_GROUP = 20  # variants of one kind of one collection for its own 95th percentile
PER_COLLECTION = ("crop", "darker")  # kinds held to the limit in every collection
CROPS = 2  # kit-framed crops per photo (the best of `lesion_crops`)
DARKER = (0.8, 0.65, 0.5)  # Lab L* scales of the darker copy (one per photo, by path hash)
METHOD = (
    "Mahalanobis distance per layer (mid-level stage, head map) from the reference centre, summed"
)
FITTED_ON = (
    "lesion photos of every collection (MSID training photos, every look-alike collection), "
    "whole, as kit-framed crops and as darker-skinned copies; limit: the highest 95th percentile "
    "of out-of-fold scores (5 folds of photos) per kind pooled, and of kit-framed crops and "
    "darker copies per collection"
)

Features = Callable[[list[np.ndarray]], np.ndarray]  # RGB images -> [n, dim] standardised


@dataclass(frozen=True)
class Reference:
    """Per reference variant: standardised features, its kind, its photo's fold (for the
    limit's out-of-fold scores), its collection, and its skin-coloured share (the kit's other
    refusal)."""

    z: np.ndarray
    kinds: np.ndarray
    folds: np.ndarray
    collections: np.ndarray
    skin: np.ndarray

    def pick(self, keep: np.ndarray) -> Reference:
        return Reference(*(getattr(self, f.name)[keep] for f in fields(self)))


def _hash(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def photo_key(collection: str, path: Path) -> str:
    """What decides a photo's fold and darker copy: the same in export and refit."""
    return f"{collection}/{path.parent.name}/{path.name}"


def variants(image: np.ndarray, key: str) -> list[tuple[str, np.ndarray]]:
    """The photo whole, its best kit-framed crops, and one darker-skinned copy."""
    from train_host.kitframe import lesion_crops

    factor = DARKER[int(_hash(key + "/tone") * len(DARKER))]
    crops = [("crop", c) for c in lesion_crops(image)[:CROPS]]
    return [("whole", image), *crops, ("darker", darken(image, factor))]


def reference(
    features: Features, photos: Sequence[tuple[str, str, np.ndarray]], chunk: int = 16
) -> Reference:
    """`photos`: (collection, key, RGB image); features computed a chunk of photos at a time."""
    zs, kinds, folds, colls, skin = [], [], [], [], []
    for i in tqdm(range(0, len(photos), chunk), desc="cannot-judge reference", leave=False):
        images = []
        for coll, key, image in photos[i : i + chunk]:
            for kind, im in variants(image, key):
                images.append(im)
                kinds.append(kind)
                folds.append(int(_hash(key) * FOLDS))
                colls.append(coll)
                skin.append(skin_fraction(im))
        zs.append(features(images))
    arrays = (kinds, folds, np.asarray(colls, dtype=object), skin)
    return Reference(np.concatenate(zs), *map(np.asarray, arrays))


def _score_model(z: np.ndarray, sizes: tuple[int, ...]) -> OodModel:
    """Per layer the centre, a Ledoit-Wolf precision and the 99th-percentile scale; no limit."""
    from sklearn.covariance import LedoitWolf

    means, precisions, refs, start = [], [], [], 0
    for size in sizes:
        block = z[:, start : start + size]
        mean = block.mean(0)
        prec = LedoitWolf().fit(block).precision_
        d = np.einsum("ij,jk,ik->i", block - mean, prec, block - mean)
        means.append(mean.astype(np.float32).astype(np.float64))
        precisions.append(prec.astype(np.float32).astype(np.float64))
        refs.append(float(np.percentile(d, REF_PERCENTILE)))
        start += size
    return OodModel(sizes, tuple(precisions), np.asarray(refs), np.inf, tuple(means))


def fit(ref: Reference, sizes: tuple[int, ...]) -> OodModel:
    """The score fitted on every reference variant; its limit from out-of-fold scores (each fold
    of photos scored by a fit without it), so it holds for photos the fit never saw."""
    unseen = np.empty(len(ref.z))
    for k in range(FOLDS):
        out = ref.folds == k
        unseen[out] = _score_model(ref.z[~out], sizes).scores(ref.z[out])
    groups = [ref.kinds == k for k in set(ref.kinds)]  # each kind, pooled over collections
    groups += [  # and what the kit sees, in each collection large enough for a 95th percentile
        (ref.kinds == k) & (ref.collections == c)
        for k, c in set(zip(ref.kinds, ref.collections, strict=True))
        if k in PER_COLLECTION
    ]
    limit = max(
        float(np.percentile(unseen[g], LIMIT_PERCENTILE)) for g in groups if g.sum() >= MIN_GROUP
    )
    return replace(_score_model(ref.z, sizes), limit=limit)


def batches(images: list[np.ndarray], spec: PreprocessSpec, size: int = 64):
    """The images preprocessed as the kit does, `size` at a time, as tensors."""
    for i in range(0, len(images), size):
        yield torch.from_numpy(np.stack([preprocess(im, spec) for im in images[i : i + size]]))


def raw_features(net: CamExport, images: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    with torch.no_grad():
        out = [net.trunk(x)[1].numpy() for x in batches(images, spec)]
    return np.concatenate(out).astype(np.float64)


def layer_sizes(net: CamExport, total: int) -> tuple[int, ...]:
    head = net.model.fc.in_features
    return (head,) if total == head else (total - head, head)


def feature_scale(
    net: CamExport, train: list[np.ndarray], spec: PreprocessSpec
) -> tuple[np.ndarray, np.ndarray]:
    """The training photos' feature means and stds: one output scale for every channel."""
    raw = raw_features(net, train, spec)
    std = raw.std(0)
    return raw.mean(0), np.maximum(std, 1e-2 * float(np.median(std)) + 1e-12)  # dead channels


@dataclass(frozen=True)
class Gate:
    """A checkpoint's "cannot judge" gate, fitted before export (`mpox-train gate --checkpoint`)
    and stored beside it: the graph's feature scale and the score. Export only puts them in the
    bundle, so a bundle is rebuilt from its checkpoint and this file."""

    mean: np.ndarray
    std: np.ndarray
    model: OodModel
    checkpoint_sha256: str  # which checkpoint's features these are

    def save(self, path: Path) -> None:
        arrays = dict(np.load(io.BytesIO(self.model.to_bytes()), allow_pickle=False))
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            np.savez(
                f,
                feature_mean=self.mean,
                feature_std=self.std,
                limit=self.model.limit,
                checkpoint_sha256=np.str_(self.checkpoint_sha256),
                **arrays,
            )
        tmp.replace(path)

    def apply(self, net: CamExport) -> None:
        apply_scale(net, self.mean, self.std)


def apply_scale(net: CamExport, mean: np.ndarray, std: np.ndarray) -> None:
    """The graph emits `features` as (raw - mean) / std from now on."""
    net.standardise(torch.from_numpy(mean), torch.from_numpy(std))


def gate_path(checkpoint: Path) -> Path:
    """Where `mpox-train gate --checkpoint` stores a checkpoint's gate: best.pt -> best.gate.npz."""
    return checkpoint.with_suffix(".gate.npz")


def load_gate(path: Path, checkpoint: Path) -> Gate:
    """A stored gate; refused in one line when missing, unreadable or another checkpoint's."""
    from device import DeviceError
    from device.core.bundle import sha256
    from device.core.ood import from_bytes
    from train_host import UserError

    if not path.is_file():
        raise UserError(
            f"no cannot-judge gate {path}: fit it first with `mpox-train gate --checkpoint "
            f"{checkpoint}` (or pass --gate FILE)"
        )
    try:
        data = path.read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            mean, std = np.asarray(z["feature_mean"]), np.asarray(z["feature_std"])
            limit, owner = float(z["limit"]), str(z["checkpoint_sha256"])
        model = from_bytes(data, limit, str(path))
    except (OSError, ValueError, KeyError, DeviceError) as e:
        raise UserError(f"{path}: not a cannot-judge gate file ({e})") from None
    if owner != sha256(checkpoint):
        raise UserError(f"{path} was fitted on another checkpoint than {checkpoint}: fit it again")
    return Gate(mean, std, model, owner)
