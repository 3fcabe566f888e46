"""Screening metrics: the operating point is chosen on validation data, then applied unchanged."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score, roc_curve
from torchmetrics.functional.classification import (
    binary_calibration_error,
    multiclass_calibration_error,
)

ECE_BINS = 10


@dataclass(frozen=True)
class Threshold:
    value: float
    rule: str  # "sensitivity>=0.95" or "youden"
    val_sensitivity: float
    val_specificity: float


def choose_threshold(
    y: np.ndarray, p: np.ndarray, min_sensitivity: float = 0.95, min_specificity: float = 0.5
) -> Threshold:
    """Highest threshold with sensitivity >= min_sensitivity (best specificity there); if that
    leaves specificity below `min_specificity` (the target is only reachable by flagging almost
    everyone), fall back to Youden's J."""
    y = np.asarray(y)
    if y.min() == y.max():
        return Threshold(0.5, "default (one class only)", float("nan"), float("nan"))
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    thr = np.clip(thr, 0.0, 1.0)
    ok = np.nonzero(tpr >= min_sensitivity)[0]
    i = ok[0] if len(ok) else None  # first index = highest threshold reaching the target
    rule = f"sensitivity>={min_sensitivity:g}"
    if i is None or 1 - fpr[i] < min_specificity:
        i, rule = int(np.argmax(tpr - fpr)), "youden"
    return Threshold(float(thr[i]), rule, float(tpr[i]), float(1 - fpr[i]))


def resampled_aucs(y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ROC AUC of each resample, given by how often it drew each photo (a row of `counts`); NaN
    where a resample lacks a class. The AUCs scikit-learn gives the resampled photos (ties count
    half), from one sort and a running sum: 1,000 `roc_auc_score` calls took 22 of an export's
    110 s."""
    y, p, w = np.asarray(y), np.asarray(p, dtype=np.float64), np.asarray(counts, np.float64)
    pos, neg = y == 1, y == 0
    order = np.argsort(p[neg], kind="stable")
    sorted_neg = p[neg][order]
    below = np.searchsorted(sorted_neg, p[pos], "left")
    not_above = np.searchsorted(sorted_neg, p[pos], "right")
    wn, wp = w[:, neg][:, order], w[:, pos]
    cum = np.concatenate([np.zeros((len(w), 1)), np.cumsum(wn, axis=1)], axis=1)
    wins = (wp * (cum[:, below] + 0.5 * (cum[:, not_above] - cum[:, below]))).sum(axis=1)
    pairs = wp.sum(axis=1) * wn.sum(axis=1)
    return np.divide(wins, pairs, out=np.full(len(w), np.nan), where=pairs > 0)


def bootstrap_auc_ci(
    y: np.ndarray, p: np.ndarray, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of ROC AUC over stratified bootstrap resamples."""
    rng = np.random.default_rng(seed)
    pos, neg = np.nonzero(y == 1)[0], np.nonzero(y == 0)[0]
    if not len(pos) or not len(neg):
        return float("nan"), float("nan")
    counts = np.stack(
        [
            np.bincount(
                np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]),
                minlength=len(y),
            )
            for _ in range(n)
        ]
    )
    aucs = resampled_aucs(y, p, counts)
    lo, hi = np.quantile(aucs, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float, seed: int = 0) -> dict:
    """Screening metrics for P(mpox) against the mpox / other truth."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    two_classes = y.min() != y.max()
    auc = float(roc_auc_score(y, p)) if two_classes else float("nan")
    lo, hi = bootstrap_auc_ci(y, p, seed=seed) if two_classes else (float("nan"),) * 2
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "threshold": float(threshold),
        **from_confusion(np.array([[tn, fp], [fn, tp]])),
        "auc": auc,
        "auc_ci95": [lo, hi],
        "ece": float(
            binary_calibration_error(torch.from_numpy(p), torch.from_numpy(y), n_bins=ECE_BINS)
        ),
    }


def from_confusion(cm: np.ndarray) -> dict:
    """Threshold metrics from a 2x2 [[tn, fp], [fn, tp]] matrix (summable across folds)."""
    (tn, fp), (fn, tp) = np.asarray(cm).tolist()
    return {
        "accuracy": _ratio(tp + tn, tn + fp + fn + tp),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "confusion": [[int(tn), int(fp)], [int(fn), int(tp)]],
    }


def multiclass_metrics(y: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """Top-1 metrics over all classes (the 4-class model's own task)."""
    pred = probs.argmax(1)
    k = len(class_names)
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=list(range(k)))),
        "ece": float(
            multiclass_calibration_error(
                torch.from_numpy(probs).float(), torch.from_numpy(y), k, n_bins=ECE_BINS
            )
        ),
        "confusion": confusion_matrix(y, pred, labels=list(range(k))).tolist(),
        "class_names": class_names,
    }


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def threshold_dict(t: Threshold) -> dict:
    return asdict(t)
