"""`mpox-screen classify`: screen stored photos with a bundle, one line (or JSON line) per image."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

from device import DeviceError
from device.bundle import default_bundle_dir, load_bundle
from device.images import UnreadableImage, find_images, read_rgb
from device.overlay import heat_overlay
from device.preprocess import crop
from device.screener import Prediction, Screener


@dataclass(frozen=True)
class ClassifyOptions:
    paths: list[Path]
    bundle: Path | None = None
    backend: str = "onnx"
    precision: str = "int8"
    threads: int = 2
    json: bool = False
    cam_out: Path | None = None


def verdict(pred: Prediction, positive_class: str) -> str:
    if len(pred.classes) == 2:
        return f"{positive_class.capitalize()} {'likely' if pred.positive else 'unlikely'}"
    return (
        f"{pred.label} ("
        + ", ".join(f"{c} {p:.2f}" for c, p in zip(pred.classes, pred.probs, strict=True))
        + ")"
    )


def cam_path(out: Path, image: Path) -> Path:
    path = out / f"{image.stem}.cam.png"
    n = 2
    while path.exists():
        path, n = out / f"{image.stem}-{n}.cam.png", n + 1
    return path


def write_cam(out: Path, image: Path, rgb, pred: Prediction, spec: dict) -> Path:
    seen = cv2.cvtColor(crop(rgb, spec["crop"]), cv2.COLOR_RGB2BGR)
    path = cam_path(out, image)
    if not cv2.imwrite(str(path), heat_overlay(seen, pred.cam)):
        raise DeviceError(f"cannot write {path}")
    return path


def classify(opts: ClassifyOptions, out=sys.stdout, err=sys.stderr) -> int:
    """Exit status: 0 all screened, 1 some images unreadable, (DeviceError for the rest)."""
    bundle = load_bundle(opts.bundle or default_bundle_dir())
    screener = Screener(bundle, bundle.select(opts.backend, opts.precision), opts.threads)
    if opts.cam_out:
        opts.cam_out.mkdir(parents=True, exist_ok=True)
    seen = failed = 0
    for path in find_images(opts.paths):
        seen += 1
        try:
            rgb = read_rgb(path)
        except UnreadableImage as e:
            failed += 1
            msg = {"path": str(path), "error": str(e)}
            print(
                json.dumps(msg) if opts.json else f"{path}: skipped, {e}",
                file=out if opts.json else err,
            )
            continue
        pred = screener.predict(rgb)
        if opts.cam_out:
            write_cam(opts.cam_out, path, rgb, pred, bundle.input)
        if opts.json:
            print(json.dumps({"path": str(path), **pred.as_dict()}), file=out)
        else:
            print(
                f"{path}: {verdict(pred, bundle.manifest['positive_class'])}  "
                f"P({bundle.manifest['positive_class']})={pred.positive_prob:.3f} "
                f"(threshold {bundle.threshold:.3f})  {pred.latency_ms:.1f} ms",
                file=out,
            )
    if seen == 0:
        raise DeviceError("no images found under " + ", ".join(map(str, opts.paths)))
    return 1 if failed else 0
