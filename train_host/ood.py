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

Version 3, the lesion check (`device.core.ood.Probe`): a class-balanced logistic regression on
every feature column (the two layers and the ImageNet branch's; 128 principal components, folded
into one weight row) of the same reference variants plus a darkest copy of each photo (L* x0.35,
about ITA -40 and below, so that no depth of skin tone looks like an object; the distance never
sees it: it widened the distance's limit and refused more of MSID), against the whole photos,
kit crops and darker copies (not the darkest) of half the photos of `nonskin/objects` (by a hash
of the name; the other half and the libraries' photographs judge it). Its limit: the highest
99th percentile of out-of-fold reference margins over the same groups, so it adds about 1 in 100
refusals of lesion photos in a group (at the 98th, 6.3-6.7 % of `bites/` were refused left out,
against 5.0 %; on the ImageNet columns alone a darkened mpox photo was refused below ITA -31).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from device.core.ood import OodModel, Probe
from device.core.skin import skin_fraction
from device.core.skin_tone import darken
from train_host.data import key_fraction
from train_host.models.camgraph import CamExport
from train_host.preprocess import PreprocessSpec, preprocess

PROBE_PERCENTILE = 99.0  # of out-of-fold reference probe margins, per group: the probe's limit
PROBE_DIMS = 128  # principal components of the features the probe reads
PROBE_C = 0.01  # inverse L2 strength: ~330 object variants against ~9,500 lesion variants
DARKEST = 0.35  # Lab L* scale of the copy only the lesion check learns from
REF_PERCENTILE = 99.0  # per-layer scale: the distance 99 % of reference photos stay under
LIMIT_PERCENTILE = 95.0  # of out-of-fold reference scores, per kind: the refusal limit
FOLDS = 5  # of reference photos (by path hash) for the out-of-fold scores
MIN_GROUP = 20  # variants of one kind of one collection for its own 95th percentile
PER_COLLECTION = ("crop", "darker", "darkest")  # kinds held to the limit in every collection
CROPS = 2  # kit-framed crops per photo (the best of `lesion_crops`)
DARKER = (0.8, 0.65, 0.5)  # Lab L* scales of the darker copy (one per photo, by path hash)
METHOD = (
    "Mahalanobis distance per layer (mid-level stage, head map) from the reference centre, summed"
)
PROBE_METHOD = (
    "; refused too when a linear probe on both layers and EfficientNet-Lite0's ImageNet features "
    "(96 px) finds an object rather than a skin-lesion photo (learned from half of nonskin/objects)"
)


def described(model: OodModel) -> dict:
    """The manifest's `ood` version, method and lesion-check width for a fitted model."""
    if model.probe is None:
        return {"version": 2, "method": METHOD}
    return {
        "version": 3,
        "method": METHOD + PROBE_METHOD,
        "lesion_check": model.dim - sum(model.sizes),
    }


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


def variants(image: np.ndarray, key: str) -> list[tuple[str, np.ndarray]]:
    """The photo whole, its best kit-framed crops, one darker-skinned copy and the darkest."""
    from train_host.kitframe import lesion_crops

    factor = DARKER[int(key_fraction(key + "/tone") * len(DARKER))]
    crops = [("crop", c) for c in lesion_crops(image)[:CROPS]]
    darker = [("darker", darken(image, factor)), ("darkest", darken(image, DARKEST))]
    return [("whole", image), *crops, *darker]


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
                folds.append(int(key_fraction(key) * FOLDS))
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


def _groups(ref: Reference) -> list[np.ndarray]:
    """Each kind pooled over collections, and what the kit sees (kit-framed crops, darker
    copies) in each collection large enough for a percentile of its own."""
    groups = [ref.kinds == k for k in set(ref.kinds)]
    groups += [
        (ref.kinds == k) & (ref.collections == c)
        for k, c in set(zip(ref.kinds, ref.collections, strict=True))
        if k in PER_COLLECTION
    ]
    return [g for g in groups if g.sum() >= MIN_GROUP]


def _out_of_fold(ref: Reference, fitted: Callable[[np.ndarray], Callable]) -> np.ndarray:
    """Each fold of photos scored by a fit on the rest (`fitted(z) -> scorer`)."""
    unseen = np.empty(len(ref.z))
    for k in range(FOLDS):
        out = ref.folds == k
        unseen[out] = fitted(ref.z[~out])(ref.z[out])
    return unseen


def _limit(ref: Reference, unseen: np.ndarray, percentile: float) -> float:
    return max(float(np.percentile(unseen[g], percentile)) for g in _groups(ref))


def fit(ref: Reference, sizes: tuple[int, ...], objects: np.ndarray | None = None) -> OodModel:
    """The score fitted on every reference variant; its limit from out-of-fold scores (each fold
    of photos scored by a fit without it), so it holds for photos the fit never saw.
    `objects`: standardised features of object photos, for the lesion check (version 3); only
    it learns from the darkest copies."""
    seen = ref.pick(ref.kinds != "darkest")
    unseen = _out_of_fold(seen, lambda z: _score_model(z, sizes).scores)
    model = replace(_score_model(seen.z, sizes), limit=_limit(seen, unseen, LIMIT_PERCENTILE))
    if objects is None:
        return model
    unseen = _out_of_fold(ref, lambda z: _probe_model(z, objects).margins)
    probe = _probe_model(ref.z, objects)
    return replace(model, probe=replace(probe, limit=_limit(ref, unseen, PROBE_PERCENTILE)))


def _probe_model(lesion: np.ndarray, things: np.ndarray) -> Probe:
    """Lesion photos (0) against objects (1), class-balanced, folded into one weight row."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([lesion, things])
    y = np.r_[np.zeros(len(lesion)), np.ones(len(things))]
    pca = PCA(min(PROBE_DIMS, x.shape[1]), random_state=0).fit(x)
    lr = LogisticRegression(C=PROBE_C, class_weight="balanced", max_iter=5000)
    lr.fit(pca.transform(x), y)
    weight = pca.components_.T @ lr.coef_[0]
    return Probe(weight, float(lr.intercept_[0] - pca.mean_ @ weight), 0.0)


def batches(images: list[np.ndarray], spec: PreprocessSpec, size: int = 64):
    """The images preprocessed as the kit does, `size` at a time, as tensors."""
    for i in range(0, len(images), size):
        yield torch.from_numpy(np.stack([preprocess(im, spec) for im in images[i : i + size]]))


def raw_features(net: CamExport, images: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    with torch.no_grad():
        out = [net.trunk(x)[1].numpy() for x in batches(images, spec)]
    return np.concatenate(out).astype(np.float64)


def layer_sizes(net: CamExport, total: int) -> tuple[int, ...]:
    """The distance's layers (the lesion check's features, when there, follow them)."""
    from train_host.models.lesion_check import WIDTH

    head = net.model.fc.in_features
    total -= 0 if net.lesion is None else WIDTH
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


def lesion_branch(model: OodModel | None, spec: PreprocessSpec):
    """The graph's lesion-check branch when `model` has a probe (version 3), else None."""
    if model is None or model.probe is None:
        return None
    from train_host.models.lesion_check import LesionCheckBranch

    return LesionCheckBranch(spec.mean, spec.std)


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
