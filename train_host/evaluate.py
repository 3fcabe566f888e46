"""Inference over decoded images with the deterministic (device-identical) preprocessing, and
full evaluation of a checkpoint: metrics at the validation-chosen threshold, plots, report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from train_host import UserError, checkpoint, report, torchfile
from train_host.data import Dataset
from train_host.metrics import (
    binary_metrics,
    choose_threshold,
    multiclass_metrics,
    threshold_dict,
)
from train_host.preprocess import PreprocessSpec, preprocess


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    images: list[np.ndarray],
    spec: PreprocessSpec,
    batch: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Softmax probabilities, (n, classes)."""
    model.eval()
    out = []
    for i in tqdm(range(0, len(images), batch), desc="predict", disable=not progress):
        x = torch.from_numpy(np.stack([preprocess(im, spec) for im in images[i : i + batch]]))
        x = x.to(device, memory_format=torch.channels_last)
        out.append(torch.softmax(model(x).float(), 1).cpu().numpy())
    k = model.fc.out_features
    return np.concatenate(out) if out else np.zeros((0, k), np.float32)


def score(model, ckpt: dict, data: Dataset, progress: bool = False) -> np.ndarray:
    """P(class) for every image, checking that the data's classes are the checkpoint's."""
    if list(data.class_names) != list(ckpt["class_names"]):
        raise UserError(
            f"data classes {data.class_names} differ from the checkpoint's {ckpt['class_names']}"
            f" (task {ckpt['task']})"
        )
    return predict(model, data.images, checkpoint.preprocess_spec(ckpt), progress=progress)


def full_metrics(data: Dataset, probs: np.ndarray, threshold: float, seed: int = 0) -> dict:
    pos = data.positive_index
    m = {"screening": binary_metrics(data.binary_targets(), probs[:, pos], threshold, seed)}
    if len(data.class_names) > 2:
        m["multiclass"] = multiclass_metrics(data.labels, probs, data.class_names)
    return m


def calibrate_and_evaluate(
    ckpt_path: Path,
    val: Dataset,
    test: Dataset,
    out: Path,
    history: list[dict] | None = None,
    threshold: dict | None = None,
) -> dict:
    """Pick the threshold on `val` (or take `threshold`, e.g. from `mpox-train calibrate`), store
    it in the checkpoint, evaluate `test`, write reports. Without a test set the report is on
    `val` and says so (optimistic: it chose the threshold)."""
    model, ckpt = checkpoint.load_model(ckpt_path)
    val_probs = score(model, ckpt, val)
    if threshold is None:
        threshold = threshold_dict(
            choose_threshold(val.binary_targets(), val_probs[:, val.positive_index])
        )
    thr = threshold["value"]
    result = {"threshold": threshold, "val": full_metrics(val, val_probs, thr)}
    held, probs, name = val, val_probs, "val"
    if len(test):
        held, probs, name = test, score(model, ckpt, test), "test"
        result["test"] = full_metrics(test, probs, thr)
    ckpt.update(threshold=result["threshold"], metrics=result)
    torchfile.save(ckpt, ckpt_path)
    write_outputs(out, ckpt, held, probs, {**result, "reported_on": name}, history)
    return result


def evaluate_checkpoint(ckpt_path: Path, data: Dataset, out: Path) -> dict:
    """Evaluate a trained model on any labelled folder, at the threshold stored at training."""
    model, ckpt = checkpoint.load_model(ckpt_path)
    probs = score(model, ckpt, data, progress=True)
    thr = ckpt.get("threshold") or {"value": 0.5, "rule": "default 0.5 (no validation threshold)"}
    result = {"threshold": thr, "folder": full_metrics(data, probs, thr["value"])}
    write_outputs(out, ckpt, data, probs, {**result, "reported_on": "folder"}, None)
    return result


def write_outputs(
    out: Path, ckpt: dict, data: Dataset, probs: np.ndarray, result: dict, history
) -> None:
    """metrics.json, predictions.csv, PNG plots and report.md for the set named in
    result["reported_on"]."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    _write_predictions(out / "predictions.csv", data, probs)
    report.plots(out, data, probs, result[result["reported_on"]], result["threshold"], history)
    report.markdown(out / "report.md", ckpt, result)


def _write_predictions(path: Path, data: Dataset, probs: np.ndarray) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", *(f"p_{c}" for c in data.class_names)])
        for file, y, pr in zip(data.relpaths(), data.labels, probs, strict=True):
            w.writerow([file, data.class_names[y], *(f"{p:.6f}" for p in pr)])
