"""Fit the "cannot judge" score of `device.ood` for a model about to be exported.

Fitted on the training photos, whole and as kit-framed crops (what a user shows the kit). The
limit is the higher of the score's 95th percentiles on the validation photos and on their crops,
so at most about 1 in 20 of either kind from the model's own collection is refused (pooled, the
twice as many crops set the limit and whole photos were refused 3 times as often); the rest is
measured on the other collections and on non-skin photographs (`mpox-bench ood`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from device.ood import OodModel
from train_host.models.camgraph import CamExport
from train_host.preprocess import PreprocessSpec, preprocess

REF_PERCENTILE = 99.0  # per-layer scale: the distance 99 % of training photos stay under
LIMIT_PERCENTILE = 95.0  # of validation photos' scores: the refusal limit


@dataclass(frozen=True)
class OodFit:
    mean: np.ndarray  # raw feature statistics the graph standardises with
    std: np.ndarray
    model: OodModel


def raw_features(net: CamExport, images: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(images), 64), desc="ood features", leave=False):
            x = torch.from_numpy(np.stack([preprocess(im, spec) for im in images[i : i + 64]]))
            out.append(net.trunk(x)[1].numpy())
    return np.concatenate(out).astype(np.float64)


def layer_sizes(net: CamExport, total: int) -> tuple[int, ...]:
    head = net.model.fc.in_features
    return (head,) if total == head else (total - head, head)


def fit(net: CamExport, train: list[np.ndarray], val: list[list[np.ndarray]], spec) -> OodFit:
    """`train`: RGB photos (whole and kit-framed crops); `val`: sets of RGB images (the whole
    photos, their crops), each refused at most LIMIT_PERCENTILE's complement."""
    from sklearn.covariance import LedoitWolf

    raw = raw_features(net, train, spec)
    mean, std = raw.mean(0), raw.std(0)
    std = np.maximum(std, 1e-2 * float(np.median(std)) + 1e-12)  # dead channels
    z = (raw - mean) / std
    sizes = layer_sizes(net, z.shape[1])
    precisions, refs, start = [], [], 0
    for size in sizes:
        block = z[:, start : start + size]
        prec = LedoitWolf(assume_centered=True).fit(block).precision_
        d = np.einsum("ij,jk,ik->i", block, prec, block)
        precisions.append(prec.astype(np.float32).astype(np.float64))
        refs.append(float(np.percentile(d, REF_PERCENTILE)))
        start += size
    unlimited = OodModel(sizes, tuple(precisions), np.asarray(refs), np.inf)
    scores = [unlimited.scores((raw_features(net, s, spec) - mean) / std) for s in val]
    limit = max(float(np.percentile(x, LIMIT_PERCENTILE)) for x in scores)
    return OodFit(mean, std, OodModel(sizes, tuple(precisions), np.asarray(refs), limit))


def attach(net: CamExport, f: OodFit) -> None:
    net.standardise(torch.from_numpy(f.mean), torch.from_numpy(f.std))
