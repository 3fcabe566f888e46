"""`mpox-bench accuracy`: a labelled folder (one folder per class) through every file of one or
more bundles with the kit's own `Screener`: ROC AUC of P(positive), accuracy, sensitivity and
specificity at the manifest's threshold (positive class vs every other folder), and latency
(preprocessing + inference per image, in process). JSON, a table and a Pareto PNG (AUC against
latency), like the paper's trade-off figure.

    mpox-bench accuracy DATA --split models/micrompoxnet-binary/split.json --part test

Without --split every image counts, including those the models were trained on (optimistic).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import REPO_DIR, BenchError, plots, report
from benchmarks.stats import summarise
from device.core.bundle import MODELS_DIR, load_bundle
from device.core.images import EXTENSIONS, UnreadableImage, read_rgb
from device.core.screener import Screener

log = logging.getLogger(__name__)
PARTS = {"test": ("test",), "val": ("val",), "heldout": ("val", "test"), "train": ("train",)}


def default_data() -> Path:
    return Path(os.environ.get("MPOX_DATA", REPO_DIR.parent / "shared" / "data" / "msid"))


def default_bundles() -> list[Path]:
    return sorted(p.parent for p in MODELS_DIR.glob("*/manifest.json"))


def add_arguments(p) -> None:
    p.add_argument(
        "data", type=Path, nargs="?", default=None, help="class folders (default: $MPOX_DATA)"
    )
    p.add_argument(
        "--bundles",
        default=None,
        help="comma-separated bundle folders (default: every bundle under models/)",
    )
    p.add_argument("--backends", default="onnx,tflite")
    p.add_argument("--precisions", default="fp32,int8")
    p.add_argument("--split", type=Path, default=None, help="split.json of a training run")
    p.add_argument(
        "--part", choices=sorted(PARTS), default="test", help="with --split (default: test)"
    )
    p.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("--limit", type=int, default=None, help="at most this many images")
    report.add_output_arguments(p)


def labelled_images(data: Path, split: Path | None, part: str) -> list[tuple[str, str]]:
    """(path relative to data, class folder), sorted; only the split's part with --split."""
    if not data.is_dir():
        raise BenchError(f"{data} is not a folder of class folders (set MPOX_DATA or pass one)")
    files = sorted(
        f.relative_to(data).as_posix()
        for f in data.rglob("*")
        if f.suffix.lower() in EXTENSIONS and f.parent != data
    )
    if split is not None:
        try:
            s = json.loads(split.read_text())
            keep = {s["files"][i] for key in PARTS[part] for i in s[key]}
        except (OSError, ValueError, KeyError, IndexError) as e:
            raise BenchError(f"cannot read split {split}: {e}") from None
        absent = keep - set(files)
        if absent:
            raise BenchError(f"{split} lists {len(absent)} files not under {data}")
        files = [f for f in files if f in keep]
    if not files:
        raise BenchError(f"no images in class folders under {data}")
    return [(f, f.split("/")[0]) for f in files]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Mann-Whitney U / (n+ n-), ties counted half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    allv = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(allv))
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(allv))
    r[order] = ranks
    u = r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def score(screener: Screener, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list]:
    probs, decisions, times = [], [], []
    for rgb in images:
        pred = screener.predict(rgb)
        probs.append(pred.positive_prob)
        decisions.append(pred.positive)
        times.append(pred.latency_ms)
    return np.asarray(probs), np.asarray(decisions, dtype=bool), times


def metrics(probs: np.ndarray, decisions: np.ndarray, labels: np.ndarray) -> dict:
    tp = int((decisions & (labels == 1)).sum())
    tn = int((~decisions & (labels == 0)).sum())
    pos, neg = int((labels == 1).sum()), int((labels == 0).sum())
    auc = roc_auc(probs, labels)
    return {
        "n": len(labels),
        "positives": pos,
        "auc": round(auc, 4) if auc is not None else None,
        "accuracy": round((tp + tn) / len(labels), 4),
        "sensitivity": round(tp / pos, 4) if pos else None,
        "specificity": round(tn / neg, 4) if neg else None,
    }


def run(args) -> int:
    data = args.data or default_data()
    items = labelled_images(data, args.split, args.part)[: args.limit]
    bundle_dirs = (
        [Path(b) for b in args.bundles.split(",") if b] if args.bundles else default_bundles()
    )
    bundles = [load_bundle(b) for b in bundle_dirs]
    if not bundles:
        raise BenchError("no bundle to evaluate")
    backends, precisions = args.backends.split(","), args.precisions.split(",")
    images, kept = [], []
    for rel, cls in items:
        try:
            images.append(read_rgb(data / rel))
            kept.append((rel, cls))
        except UnreadableImage as e:
            log.warning("skipped %s: %s", rel, e)
    doc = report.document(
        "accuracy",
        {
            "data": report.shown(data),
            "split": report.shown(args.split) if args.split else None,
            "part": args.part if args.split else "all images",
            "images": len(images),
            "classes": sorted({c for _, c in kept}),
            "threads": args.threads,
            "latency": "Screener.predict per image: preprocessing + inference, in process",
        },
        args.board,
    )
    for bundle in bundles:
        positive = bundle.manifest.positive_class
        labels = np.asarray([c == positive for _, c in kept], dtype=int)
        if not labels.any():
            raise BenchError(f"no '{positive}' folder under {data} for {bundle.root.name}")
        for f in bundle.files():
            if f.format not in backends or f.precision not in precisions:
                continue
            t0 = time.perf_counter()
            screener = Screener(bundle, f, args.threads)
            screener.predict(images[0])  # warm-up
            probs, decisions, times = score(screener, images)
            row = {
                "bundle": bundle.name,
                "folder": report.shown(bundle.root),
                "architecture": bundle.manifest.architecture,
                "backend": f.format,
                "precision": f.precision,
                "file": report.shown(f.path),
                "size_mb": round(f.path.stat().st_size / 1e6, 3),
                "threshold": round(bundle.threshold, 6),
                **metrics(probs, decisions, labels),
                **{k: v for k, v in summarise(times).items() if k in ("p50_ms", "p95_ms")},
            }
            doc["results"].append(row)
            print(
                f"{row['bundle']} {f.format} {f.precision}: AUC {row['auc']}, accuracy "
                f"{row['accuracy']}, sens {row['sensitivity']}, spec {row['specificity']}, "
                f"p50 {row['p50_ms']:.2f} ms ({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
            )
    title = f"AUC vs latency, {len(images)} images ({doc['config']['part']}), {doc['board']}"
    report.finish(
        doc, args, {"accuracy": lambda p: plots.pareto(doc["results"], "p50_ms", "auc", title, p)}
    )
    return 0


def markdown(doc: dict) -> str:
    c = doc["config"]
    cols = [
        ("bundle", "bundle"),
        ("backend", "backend"),
        ("precision", "precision"),
        ("auc", "AUC"),
        ("accuracy", "accuracy"),
        ("sensitivity", "sensitivity"),
        ("specificity", "specificity"),
        ("threshold", "threshold"),
        ("p50_ms", "p50 ms"),
        ("size_mb", "file MB"),
    ]
    return "\n".join(
        [
            "## Accuracy against latency (`mpox-bench accuracy`)",
            "",
            f"{doc['created']}; {c.get('images')} images of {c.get('data')} ({c.get('part')}"
            + (f" of {c['split']}" if c.get("split") else "")
            + f"); positive class vs the rest at each manifest's threshold; latency = "
            f"preprocessing + inference, {c.get('threads')} thread(s).",
            "",
            report.markdown_table(doc["results"], cols),
        ]
    )
