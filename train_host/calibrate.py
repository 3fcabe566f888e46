"""Calibration and the operating point for how the kit is used: temperature scaling and a threshold
fitted on validation photos *and* their kit-framed crops (a user fills the square with a lesion).

The temperature is folded into the linear head (weights and bias divided by T), so the exported
graph, the manifest contract and the device code stay as they are: softmax of the logits is the
calibrated P(mpox), and the CAM (normalised on the device) is unchanged. The other collections
are not used here: they stay left out for the collection-shift protocol.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from train_host import UserError, torchfile
from train_host.checkpoint import load_model, preprocess_spec
from train_host.collection_shift import kit_framed
from train_host.evaluate import predict
from train_host.metrics import ECE_BINS, binary_metrics, choose_threshold, threshold_dict


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """T minimising the NLL of softmax(log p / T) (log p equals the logits up to a constant)."""
    logp = np.log(np.clip(probs, 1e-12, 1.0))

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(1, keepdims=True)
        q = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-q[np.arange(len(labels)), labels].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def scaled(probs: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-12, 1.0)) / t
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def calibrate(ckpt_path, val, out_path) -> dict:
    """Fit T and the threshold on `val` (photos + kit-framed crops); write `out_path`, the
    checkpoint with the scaled head and the new threshold; return before/after numbers."""
    model, ckpt = load_model(ckpt_path)
    if "temperature" in ckpt:
        raise UserError(
            f"{ckpt_path} is calibrated already (temperature {ckpt['temperature']:.3f}): "
            "calibrate the checkpoint it was made from"
        )
    spec = preprocess_spec(ckpt)
    crops, owner = kit_framed(val.images)
    images = [*val.images, *crops]
    labels = np.concatenate([val.labels, val.labels[owner]])
    probs = predict(model, images, spec)
    t = fit_temperature(probs, labels)
    after = scaled(probs, t)
    pos, y = val.positive_index, (labels == val.positive_index).astype(int)
    crop_part = slice(len(val), None)
    thr = choose_threshold(y[crop_part], after[crop_part, pos])
    with torch.no_grad():
        model.fc.weight /= t
        model.fc.bias /= t
    ckpt["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt["threshold"] = {**threshold_dict(thr), "chosen_on": "kit-framed validation crops"}
    ckpt["temperature"] = t
    torchfile.save(ckpt, out_path)
    return {
        "temperature": t,
        "threshold": ckpt["threshold"],
        "ece_bins": ECE_BINS,
        "before": binary_metrics(y, probs[:, pos], thr.value)["ece"],
        "after": binary_metrics(y, after[:, pos], thr.value)["ece"],
        "n_photos": len(val),
        "n_crops": len(crops),
    }
