"""Does the kit's lightweight map tell the same story as the full method? Every file of a bundle
runs through the device's own preprocessing and runtime (the export gate's `run_file`), and its
in-graph CAM for the explained class is compared with captum's Grad-CAM at the same layer."""

from __future__ import annotations

import numpy as np

from device.core.bundle import Bundle
from device.core.screener import softmax
from device.core.verdict import decide, normalise_cam
from train_host.export.gate import pearson, run_file


def file_agreement(
    logits: np.ndarray,
    cams: np.ndarray,
    targets: list[int],
    torch_cams: list[np.ndarray],
    positive: int,
    threshold: float,
) -> dict:
    """`pearson`: raw maps (before ReLU, as the gate compares them); `shown_pearson`: the maps
    as a screen shows them (ReLU, scaled to [0, 1]); `label_agreement`: the kit's decision."""
    raw = [pearson(cams[i, t], torch_cams[i]) for i, t in enumerate(targets)]
    shown = [
        pearson(normalise_cam(cams[i, t]), normalise_cam(torch_cams[i]))
        for i, t in enumerate(targets)
    ]
    probs = softmax(logits.astype(np.float64))
    labels = [decide(p, positive, threshold) for p in probs]
    return {
        "pearson_mean": float(np.mean(raw)),
        "pearson_min": float(np.min(raw)),
        "shown_pearson_mean": float(np.mean(shown)),
        "shown_pearson_min": float(np.min(shown)),
        "label_agreement": float(np.mean([a == b for a, b in zip(labels, targets, strict=True)])),
        "n": len(targets),
    }


def bundle_agreement(
    bundle: Bundle, images, targets: list[int], torch_cams: list[np.ndarray]
) -> dict:
    """file name -> agreement with captum, for every file the manifest lists."""
    out = {}
    for f in bundle.files():
        run = run_file(f.path, images, bundle.input, f.layout)
        entry = file_agreement(
            run.logits, run.cams, targets, torch_cams, bundle.positive_index, bundle.threshold
        )
        out[f.name] = {"format": f.format, "precision": f.precision, **entry}
    return out
