"""The "cannot judge" score: how far a frame's features lie from skin-lesion photos'.

The bundle's graph returns, beside logits and CAM, the pooled activations of a mid-level stage and
of the map the head reads, standardised with the training photos' means and stds (`features`).
Per layer, a Mahalanobis distance from the reference photos' centre (Ledoit-Wolf covariance),
divided by its 99th percentile there; the score is the sum. Version 1 fitted the reference on
MSID's training photos only (centred on them); version 2 on the lesion photos of every
collection, kit-framed crops and darker-skinned copies (`train_host/ood.py`), with its centre
stored, because "a skin-lesion photo" must mean every collection's and every skin tone's. The
mid-level layer sees textures and colours no lesion photo has, the last layer what the model
never learned: together they refuse far more non-skin photos than either alone
(docs/field-kit.md, "Cannot judge").
Above the manifest's `ood.limit` the kit gives no verdict.

Version 3 adds a lesion check: the graph also returns the pooled features of a small ImageNet
network (EfficientNet-Lite0 at 96 px, `train_host/models/lesion_check.py`) after the two layers,
and a linear probe on every column, trained on lesion photos of every collection against photos
of objects, says how much more the frame looks like an object than like a skin-lesion photo. The
distance alone let photographs of objects through (72 % of them refused or not "likely"): lesion
photos of five collections spread so widely that objects fall inside, in this model's features
and in ImageNet's alike; a boundary learned against objects does not. The score is the larger of
the distance and the probe's margin shifted onto the distance's limit (`limit + margin`), so one
number and one limit still decide: over it when either is.

The parameters live in a small `.npz` beside the model files, pinned by sha256 in the manifest
(manifest field `ood`, version 1); bundles without it still load and are never refused.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from device import DeviceError

MAX_DIM = 4096


@dataclass(frozen=True)
class Probe:
    """A linear lesion-vs-object probe: margin > 0 looks more like an object than its limit."""

    weight: np.ndarray  # [d]
    bias: float
    limit: float  # the probe score above which a photo is refused

    @property
    def dim(self) -> int:
        return len(self.weight)

    def margins(self, z: np.ndarray) -> np.ndarray:
        return z @ self.weight + self.bias - self.limit

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "probe_weight": self.weight.astype(np.float32),
            "probe_bias_limit": np.asarray([self.bias, self.limit], np.float64),
        }


def _probe(z) -> Probe | None:
    if "probe_weight" not in z.files:
        return None
    weight = np.asarray(z["probe_weight"], np.float64)
    bias, limit = (float(v) for v in np.asarray(z["probe_bias_limit"], np.float64))
    return Probe(weight, bias, limit)


@dataclass(frozen=True)
class OodModel:
    sizes: tuple[int, ...]  # features per layer, in the graph's order
    precisions: tuple[np.ndarray, ...]  # one [d, d] inverse covariance per layer
    refs: np.ndarray  # per-layer distance that 99 % of training photos stay under
    limit: float  # above this summed score: cannot judge
    means: tuple[np.ndarray, ...] | None = None  # per-layer reference centre (None: zero)
    probe: Probe | None = None  # version 3: the lesion check, on every column

    @property
    def dim(self) -> int:
        return sum(self.sizes) if self.probe is None else self.probe.dim

    def scores(self, z: np.ndarray) -> np.ndarray:
        """[n, dim] standardised features -> [n] scores."""
        z = np.atleast_2d(np.asarray(z, np.float64))
        total, start = np.zeros(len(z)), 0
        means = self.means or tuple(np.zeros(s) for s in self.sizes)
        layers = zip(self.sizes, self.precisions, self.refs, means, strict=True)
        for size, prec, ref, mean in layers:
            block = z[:, start : start + size] - mean
            total += np.einsum("ij,jk,ik->i", block, prec, block) / ref
            start += size
        if self.probe is None:
            return total
        return np.maximum(total, self.limit + self.probe.margins(z))

    def score(self, z: np.ndarray) -> float:
        return float(self.scores(z)[0])

    def judgeable(self, score: float) -> bool:
        return bool(score <= self.limit)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays = {f"precision_{i}": p.astype(np.float32) for i, p in enumerate(self.precisions)}
        arrays |= {f"mean_{i}": m.astype(np.float32) for i, m in enumerate(self.means or ())}
        if self.probe is not None:
            arrays |= self.probe.arrays()
        np.savez(buf, sizes=np.asarray(self.sizes, np.int64), refs=self.refs, **arrays)
        return buf.getvalue()


def from_bytes(data: bytes, limit: float, where: str) -> OodModel:
    """The verified bytes of the bundle's `.npz` (never pickles), checked for shape and values."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            sizes = tuple(int(s) for s in z["sizes"])
            refs = np.asarray(z["refs"], np.float64)
            precisions = tuple(
                np.asarray(z[f"precision_{i}"], np.float64) for i in range(len(sizes))
            )
            means = None
            if "mean_0" in z.files:
                means = tuple(np.asarray(z[f"mean_{i}"], np.float64) for i in range(len(sizes)))
            probe = _probe(z)
    except (ValueError, KeyError, OSError, TypeError) as e:
        raise DeviceError(f"{where}: not a readable OOD parameter file ({e})") from None
    if not sizes or any(s < 1 for s in sizes) or sum(sizes) > MAX_DIM or len(refs) != len(sizes):
        raise DeviceError(f"{where}: OOD layer sizes {sizes} do not fit together")
    for size, p in zip(sizes, precisions, strict=True):
        if p.shape != (size, size) or not np.isfinite(p).all():
            raise DeviceError(f"{where}: an OOD precision matrix is not {size}x{size} finite")
    for size, m in zip(sizes, means or (), strict=False):
        if m.shape != (size,) or not np.isfinite(m).all():
            raise DeviceError(f"{where}: an OOD reference centre is not {size} finite values")
    if not (np.isfinite(refs).all() and (refs > 0).all()):
        raise DeviceError(f"{where}: OOD reference distances must be finite and positive")
    if probe is not None and not (
        probe.weight.ndim == 1
        and sum(sizes) < probe.dim <= MAX_DIM
        and np.isfinite(probe.weight).all()
        and np.isfinite([probe.bias, probe.limit]).all()
    ):
        raise DeviceError(f"{where}: the lesion check's probe is not finite values of one row")
    return OodModel(sizes, precisions, refs, float(limit), means, probe)
