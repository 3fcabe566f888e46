"""`mpox-train export`: checkpoint -> four model files -> gate -> manifest and card.

Files are built in a staging folder and only moved into the bundle after every one passes the
gate, so a failed export never leaves a half-written or unverified bundle behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.updates.signing import SIGNATURE, sign
from train_host import UserError, ood
from train_host.checkpoint import load_model, preprocess_spec
from train_host.data import Dataset, load_dataset, with_extra_negatives
from train_host.export import gate, manifest, onnx_export, tflite_export
from train_host.grouping import Split
from train_host.models.camgraph import wrap
from train_host.preprocess import PreprocessSpec, preprocess

log = logging.getLogger(__name__)
OOD_FILE = "ood.npz"


@dataclass(frozen=True)
class FileSpec:
    name: str
    format: str
    precision: str
    layout: str


FILES = (
    FileSpec("model.fp32.onnx", "onnx", "fp32", "NCHW"),
    FileSpec("model.int8.onnx", "onnx", "int8", "NCHW"),
    FileSpec("model.fp32.tflite", "tflite", "fp32", "NHWC"),
    FileSpec("model.int8.tflite", "tflite", "int8", "NHWC"),
)


@dataclass(frozen=True)
class ExportRequest:
    checkpoint: Path
    data: Path
    out: Path
    split: Path | None = None  # default: split.json beside the checkpoint
    cv: Path | None = None  # default: cv/cv.json beside the checkpoint, if present
    calib_count: int = 128
    # binary bundles: 1 in `calib_share` photos of each gate collection calibrates int8 instead
    # of being gated (0: MSID's training photos only)
    calib_share: int = 8
    name: str | None = None
    card_notes: Path | None = None  # markdown appended to card.md (e.g. the comparison table)
    ship_fp32: bool = True  # False: fp32 files are built and gated but not kept (size)
    # binary bundles: also gate on these collections (None = every folder beside `data`)
    collections: list[Path] | None = None
    tflite_headroom: float = tflite_export.HEADROOM  # int8 TFLite activation range widening
    limits: gate.Limits = field(default_factory=gate.Limits)
    sign: Path | None = None  # private Ed25519 key: sign the manifest (device/updates/signing.py)
    gate: Path | None = None  # the cannot-judge gate (default: CKPT.gate.npz: mpox-train gate)


def _beside(ckpt: Path, given: Path | None, rel: str) -> Path | None:
    if given is not None:
        return given
    path = ckpt.parent / rel
    return path if path.is_file() else None


def split_parts(data: Dataset, split_path: Path) -> tuple[Dataset, Dataset]:
    """(calibration pool = train part, held-out = val + test) as datasets."""
    split = Split.load(split_path)
    return split.part(data, "train"), split.part(data, "val", "test")


def _split_path(checkpoint: Path, split: Path | None) -> Path:
    path = _beside(checkpoint, split, "split.json")
    if path is None:
        raise UserError(f"no split.json beside {checkpoint}: pass --split")
    return path


def held_out(data: Dataset, checkpoint: Path, split: Path | None = None) -> Dataset:
    """The val + test images of the checkpoint's split (split.json beside it by default)."""
    return split_parts(data, _split_path(checkpoint, split))[1]


def validation(data: Dataset, checkpoint: Path, split: Path | None = None) -> Dataset:
    """The val images of the checkpoint's split: where thresholds are chosen."""
    return Split.load(_split_path(checkpoint, split)).part(data, "val")


def calibration_images(train: Dataset, count: int) -> list[np.ndarray]:
    """`count` training images spread evenly over the (class-sorted) list, so every class shows:
    half as whole photos, half as kit-framed crops of them (a user fills the square with the
    lesion: int8 ranges from whole web photos alone clip on such close-ups)."""
    from train_host.kitframe import lesion_crops

    if len(train) < min(count, 100):
        raise UserError(f"only {len(train)} training images for calibration; need >= 100")
    take = np.linspace(0, len(train) - 1, min(count, len(train))).round().astype(int)
    whole = [train.images[i] for i in take[::2]]
    crops = [lesion_crops(train.images[i])[j % 6] for j, i in enumerate(take[1::2])]
    return whole + crops


def input_range(spec: PreprocessSpec) -> tuple[float, float]:
    """The values preprocessing can produce (pixels 0..255): the int8 input range, so that very
    dark or bright pixels are not clipped as they would be with a range from calibration."""
    mean, std = np.asarray(spec.mean), np.asarray(spec.std)
    return float(((0 - mean) / std).min()), float(((1 - mean) / std).max())


def build_file(
    f: FileSpec,
    model,
    spec: PreprocessSpec,
    calib: list[np.ndarray],
    stage: Path,
    headroom: float = tflite_export.HEADROOM,
) -> None:
    """One of FILES into `stage`; an int8 file is quantized from its format's fp32 file, which
    FILES lists before it."""
    path, fp32, rng = stage / f.name, stage / f"model.fp32.{f.format}", input_range(spec)
    if f.precision == "fp32":
        (onnx_export if f.format == "onnx" else tflite_export).export_fp32(model, spec.size, path)
    elif f.format == "onnx":
        onnx_export.quantize_int8(fp32, calib, path, rng)
    else:
        tflite_export.quantize_int8(fp32, calib, path, rng, headroom)


def _read_extras(req: ExportRequest) -> tuple[dict | None, str]:
    """(cv summary, card notes), read before anything in the bundle changes."""
    cv_path = _beside(req.checkpoint, req.cv, "cv/cv.json")
    try:
        cv = json.loads(cv_path.read_text()) if cv_path else None
        notes = req.card_notes.read_text() if req.card_notes else ""
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the CV summary or the card notes: {e}") from None
    return cv, notes


def kit_crops(images: list[np.ndarray]) -> list[np.ndarray]:
    """The best kit-framed crops of each photo: what a user who fills the square shows the kit."""
    from train_host.kitframe import lesion_crops

    return [c for im in images for c in lesion_crops(im)[: ood.CROPS]]


def export_bundle(req: ExportRequest) -> dict:
    model, ckpt = load_model(req.checkpoint)
    stored = ood.load_gate(req.gate or ood.gate_path(req.checkpoint), req.checkpoint)
    spec = preprocess_spec(ckpt)
    cv, notes = _read_extras(req)
    data = load_dataset(req.data, ckpt["task"])
    split = _split_path(req.checkpoint, req.split)
    train, held = split_parts(data, split)
    shared: list[np.ndarray] = []
    if ckpt["task"] == "binary":
        held, shared = gate_set(held, req)
    own = calibration_images(train, req.calib_count)
    calib = [preprocess(img, spec) for img in own + shared]
    cam_model = wrap(model, spec.size, ood=True, lesion=ood.lesion_branch(stored.model, spec))
    stored.apply(cam_model)
    ood_model = stored.model
    names = [_collection(p, data.root) for p in held.paths]
    shipped = [f for f in FILES if req.ship_fp32 or f.precision != "fp32"]

    req.out.mkdir(parents=True, exist_ok=True)
    stage = req.out / ".export-staging"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        log.info("exporting %s with %d calibration images", req.checkpoint, len(calib))
        (stage / OOD_FILE).write_bytes(ood_model.to_bytes())
        ref = gate.reference(cam_model, held.images, held.binary_targets(), spec, ood_model)
        metrics = {}
        for f in FILES:  # each file gated as soon as it is built: a failure stops the export
            build_file(f, cam_model, spec, calib, stage, req.tflite_headroom)
            metrics[f.name] = verify(stage, f, ref, held, names, ckpt, req.limits, ood_model)
        files = {
            f.name: manifest.file_entry(
                stage / f.name, f.format, f.precision, f.layout, metrics[f.name]
            )
            for f in shipped
        }
        scores = ref.ood_scores
        ood_entry = manifest.ood_entry(stage / OOD_FILE, ood_model, scores, names, held.images)
        for name in [f.name for f in FILES] + [OOD_FILE]:
            (req.out / name).unlink(missing_ok=True)  # no stale file beside the new manifest
        for name in [f.name for f in shipped] + [OOD_FILE]:
            (stage / name).chmod(0o644)  # the quantizer writes one executable
            (stage / name).replace(req.out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    cam_shape = [1, len(ckpt["class_names"]), *ref.gradcam.shape[1:]]
    where = per_collection(ref.probs[:, data.positive_index], held, names, ckpt)
    export = {
        "calibration": f"{len(own)} training images (whole photos and kit-framed crops) and "
        f"{len(shared)} whole photos of the other collections (1 in {req.calib_share} of each, "
        "drawn by folder and name; not in the gate set)",
        "calib_share": req.calib_share if shared else 0,
        "tflite_headroom": req.tflite_headroom,
    }
    name = req.name or req.out.resolve().name
    m = manifest.build(name, ckpt, files, cam_shape, cv, where, ood_entry, export)
    manifest.write(req.out, m, notes)
    (req.out / SIGNATURE).unlink(missing_ok=True)  # an old signature never covers a new manifest
    if req.sign:
        sign(req.out, req.sign)
    return m


def gate_set(held: Dataset, req: ExportRequest) -> tuple[Dataset, list[np.ndarray]]:
    """(gate set, calibration share). The gate set is MSID's held-out photos plus the photos of
    the other collections: a binary bundle's decision must hold where the kit will be used, not
    only on MSID's split. Their calibration share is split off first: int8 ranges fitted on MSID
    alone flipped 1.4 % (ONNX) and 2.5 % (LiteRT) of the other collections' decisions, and the
    gate judges only photos that calibration never saw."""
    from train_host.collection_shift import other_collections

    roots = req.collections if req.collections is not None else other_collections(req.data)
    if not roots:
        return held, []
    every = with_extra_negatives(held, roots)
    share = [
        i >= len(held) and in_calibration_share(p, req.calib_share)
        for i, p in enumerate(every.paths)
    ]
    pick = np.flatnonzero(share)
    return every.subset(np.flatnonzero(~np.asarray(share))), [every.images[i] for i in pick]


def in_calibration_share(path: Path, share: int) -> bool:
    """1 in `share` photos, drawn by the photo's condition folder and name: the same photos on
    every machine and in every export, wherever the collection lies."""
    if share <= 0:
        return False
    key = f"{path.parent.name}/{path.name}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % share == 0


def _collection(path: Path, root: Path) -> str:
    return root.name if root in path.parents else path.parent.parent.name


def per_collection(p: np.ndarray, held: Dataset, names: list[str], ckpt: dict) -> dict:
    """What a clinic can expect at the threshold, per collection of the gate set (MSID: its
    held-out split; the others: every photo, never trained on), and within each per condition
    (source folder: a clinic that sees scabies wants that line) and per skin-tone group (a
    clinic whose patients have dark skin wants that one), with Wilson intervals."""
    from train_host.collection_shift import at_threshold, by_condition, by_tone

    names_arr, thr, out = np.asarray(names), ckpt["threshold"]["value"], {}
    for name in dict.fromkeys(names):
        pick = np.flatnonzero(names_arr == name)
        part = held.subset(pick)
        y = part.binary_targets()
        out[name] = _expect(at_threshold(y, p[pick], thr))
        conds = by_condition(part, p[pick], thr)
        out[name]["conditions"] = {c: _expect(m) for c, m in conds.items()}
        tones = by_tone(part.images, y, p[pick], thr)
        out[name]["tones"] = {g: _expect(m) for g, m in tones.items()}
    return out


def _expect(m: dict) -> dict:
    keep = ("n", "positives", "flagged", "auc", "auc_ci95", "ece")
    keep += ("sensitivity", "sensitivity_ci95") if m["positives"] else ()
    keep += ("specificity", "specificity_ci95") if m["positives"] < m["n"] else ()
    return {k: m[k] for k in keep}


def verify(
    stage: Path,
    f: FileSpec,
    ref: gate.Reference,
    held: Dataset,
    names: list[str],
    ckpt,
    limits,
    ood_model,
) -> dict:
    """One file's gate metrics against the torch reference; a failure is one UserError."""
    run = gate.run_file(stage / f.name, held.images, ckpt["preprocess"], f.layout)
    binary, thr = ckpt["task"] == "binary", ckpt["threshold"]["value"]
    metrics = gate.file_metrics(
        ref, run.logits, run.cams, held.positive_index, thr, names=names if binary else None
    )
    scores = ood_model.scores(run.features)
    metrics |= gate.ood_metrics(ref.ood_scores, scores, ood_model.limit, limits.ood_band)
    log.info(
        "%s: %s", f.name, {k: round(v, 4) for k, v in metrics.items() if not isinstance(v, dict)}
    )
    gate.check(f.name, f.precision, metrics, limits, binary=binary)
    return metrics
