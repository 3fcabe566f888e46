"""`mpox-train explain` as one function: model (checkpoint, or a bundle's checkpoint), images,
then per image the attributions, the deletion curves and the panel; then the bundle agreement,
`explain.json`, `deletion.png` and `index.md`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from device import DeviceError
from device.core.bundle import Bundle, load_bundle
from device.core.verdict import decide
from train_host import UserError
from train_host.checkpoint import load_model, preprocess_spec
from train_host.explain import deletion as dl
from train_host.explain.agreement import bundle_agreement
from train_host.explain.index import order, write_index
from train_host.explain.methods import METHODS, Explainer, parse_methods
from train_host.explain.panels import display_view, title_line, write_panel
from train_host.explain.sources import Images, collect, read
from train_host.preprocess import RESIZE_METHODS, center_square, preprocess


@dataclass
class ExplainRequest:
    paths: list[Path]
    out: Path
    checkpoint: Path | None = None
    bundle: Path | None = None
    methods: str | list[str] = field(default_factory=lambda: list(METHODS))  # or "gradcam,ig"
    layers: list[str] | None = None
    ig_steps: int = 32
    lime_samples: int = 150
    superpixels: int = 50
    deletion: bool = True
    deletion_grid: int = 8
    deletion_steps: int = 16
    deletion_fill: str = "blur"
    random_orders: int = 3
    seed: int = 0


def resolve_model(req: ExplainRequest) -> tuple[torch.nn.Module, dict, Path, Bundle | None]:
    """The checkpoint captum explains, and the bundle whose files are compared with it."""
    bundle = None
    if req.bundle is not None:
        try:
            bundle = load_bundle(req.bundle)
        except DeviceError as exc:
            raise UserError(str(exc)) from None
    if req.checkpoint is None and req.bundle is None:
        raise UserError("pass --checkpoint CKPT or --bundle DIR")
    path = req.checkpoint or req.bundle / "checkpoint.pt"
    if req.checkpoint is None and not path.is_file():
        raise UserError(
            f"bundle {req.bundle} holds no checkpoint.pt (captum needs the PyTorch weights): "
            "add --checkpoint CKPT"
        )
    model, ckpt = load_model(path)
    if bundle is not None and (
        bundle.classes != list(ckpt["class_names"])
        or int(bundle.input["size"]) != int(ckpt["preprocess"]["size"])
    ):
        raise UserError(f"{path} and bundle {req.bundle} disagree on classes or input size")
    return model, ckpt, path, bundle


def decision(probs: np.ndarray, ckpt: dict) -> int:
    """The kit's decision: positive at or above the checkpoint's threshold, else the likeliest
    other class (arg-max when the checkpoint has no threshold)."""
    threshold = (ckpt.get("threshold") or {}).get("value")
    if threshold is None:
        return int(probs.argmax())
    return decide(probs, list(ckpt["class_names"]).index(ckpt["positive_class"]), threshold)


def explain(req: ExplainRequest) -> dict:
    t0 = time.perf_counter()
    methods = parse_methods(req.methods)
    model, ckpt, ckpt_path, bundle = resolve_model(req)
    classes = list(ckpt["class_names"])
    items = collect(req.paths, classes, ckpt["positive_class"])
    spec = preprocess_spec(ckpt)
    size = spec.size
    explainer = Explainer(
        model, size, methods, req.layers, req.ig_steps, req.lime_samples, req.superpixels
    )
    deleter = None
    if req.deletion:
        deleter = dl.Deletion(
            model, size, req.deletion_grid, req.deletion_steps, req.deletion_fill, req.random_orders
        )
    panels = req.out / "panels"
    panels.mkdir(parents=True, exist_ok=True)

    records, curves, targets, cams, kept, skipped = [], [], [], [], [], []
    for i, item in enumerate(tqdm(items, desc="explain", unit="img")):
        image = read(item.path)
        if image is None:
            skipped.append(str(item.path))
            continue
        torch.manual_seed(req.seed + i)  # LIME's samples
        x = torch.from_numpy(preprocess(image, spec))[None]
        probs = explainer.predict(x)
        target = decision(probs, ckpt)
        square = center_square(image)
        view = cv2.resize(square, (size, size), interpolation=RESIZE_METHODS[spec.resize])
        maps = explainer.explain(x, view, target)
        label, prob = classes[target], float(probs[target])
        rec = {
            "name": item.name,
            "file": str(item.path),
            "panel": f"panels/{item.name}.png",
            "label": label,
            "prob": prob,
            "probs": {c: round(float(p), 6) for c, p in zip(classes, probs, strict=True)},
            "true": item.label,
            "correct": None if item.label is None else item.label == label,
        }
        if deleter is not None:
            c = deleter.run(x, target, maps.maps, seed=req.seed + i)
            curves.append(c)
            rec["deletion_auc"] = {n: round(dl.area(v), 5) for n, v in c.items()}
        write_panel(
            req.out / rec["panel"],
            display_view(image),
            maps.maps,
            maps.titles,
            title_line(item.name, label, prob, item.label),
            maps.segments,
        )
        records.append(rec)
        targets.append(target)
        cams.append(maps.cam_raw)
        kept.append(item.path)
    if not records:
        raise UserError("none of the images could be read")

    titles = {n: explainer.title(n) for n in explainer.names()}
    summary = {
        "model": ckpt["model"],
        "checkpoint": str(ckpt_path),
        "bundle": str(req.bundle) if req.bundle else None,
        "classes": classes,
        "threshold": (ckpt.get("threshold") or {}).get("value"),
        "methods": explainer.names(),
        "titles": titles,
        "settings": {
            "ig_steps": req.ig_steps,
            "ig_baseline": "zeros (the mean colour after normalisation)",
            "lime_samples": req.lime_samples,
            "superpixels": req.superpixels,
            "deletion_grid": req.deletion_grid,
            "deletion_steps": deleter.steps if deleter else None,
            "deletion_fill": req.deletion_fill,
            "random_orders": req.random_orders,
            "seed": req.seed,
        },
        "n_images": len(records),
        "n_labelled": sum(r["true"] is not None for r in records),
        "n_misclassified": sum(r["correct"] is False for r in records),
        "skipped": skipped,
        "deletion": dl.summarise(curves) if curves else None,
    }
    if bundle is not None:
        summary["agreement"] = bundle_agreement(bundle, Images(kept), targets, cams)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    summary["images"] = order(records)
    (req.out / "explain.json").write_text(json.dumps(summary, indent=1))
    if curves:
        plot_path = req.out / "deletion.png"
        dl.plot(summary["deletion"], titles, plot_path, len(records), req.deletion_fill)
    write_index(req.out / "index.md", records, summary)
    return summary
