"""The collection-shift protocol: does the verdict hold on photos from other collections?

MSID cross-validation and synthetic shifts said the models generalise; photos from other
collections said they flag almost every patient. So every model decision reports, per collection:
- MSID held-out photos as they are (AUC, sensitivity, specificity at the model's threshold);
- kit framing: the same held-out photos cropped the way a kit user fills the square with the
  lesion (`train_host.kitframe`, several crops per photo), AUC with a photo-grouped bootstrap CI;
- every other (negative-only) collection: specificity at the threshold (Wilson interval), and the
  AUC of kit-framed MSID mpox crops against that collection's photos. A collection the model was
  trained on (`--extra-negatives`) is scored but marked `trained_on`, and the selection rule
  leaves it out: the protocol judges a collection only where it was left out.
Each of these also per condition (the source folder: scabies, healthy, ...), because a kit that
flags another clinic's healthy skin fails differently from one that flags a look-alike disease.
Scorers are a torch checkpoint or a shipped bundle (its int8 ONNX, through the device code).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from device.core.skin_tone import tone_groups
from device.core.stats import wilson
from train_host import UserError
from train_host.data import GATE_ONLY, Dataset, load_dataset
from train_host.kitframe import lesion_crops
from train_host.metrics import binary_metrics, resampled_aucs

BOOTSTRAP = 1000


@dataclass
class Scorer:
    """P(mpox) for a list of RGB images, at the model's own threshold."""

    name: str
    threshold: float
    score: Callable[[list[np.ndarray]], np.ndarray]
    trained_on: frozenset[str] = frozenset()  # collections among the training images


def seen_collections(data: dict, config: dict | None = None) -> frozenset[str]:
    """The other collections a model saw in training, from its data provenance (a checkpoint
    from before the provenance recorded them: from its training config)."""
    extra = data.get("extra_negatives") or (config or {}).get("extra_negatives") or []
    return frozenset(Path(r).resolve().name for r in extra)


def checkpoint_scorer(path: Path) -> Scorer:
    from train_host.checkpoint import load_model, preprocess_spec
    from train_host.evaluate import predict

    model, ckpt = load_model(path)
    if "threshold" not in ckpt:
        raise UserError(f"{path} has no validation threshold (train it with `mpox-train fit`)")
    spec, pos = preprocess_spec(ckpt), ckpt["class_names"].index(ckpt["positive_class"])
    return Scorer(
        f"{path.parent.name}",
        float(ckpt["threshold"]["value"]),
        lambda images: predict(model, images, spec)[:, pos],
        seen_collections(ckpt.get("data", {}), ckpt.get("config")),
    )


def ensemble_scorer(paths: list[Path], val: Dataset) -> Scorer:
    """The mean P(mpox) of several checkpoints (a candidate teacher). An ensemble has no threshold
    of its own: it is chosen as `mpox-train calibrate` does, for sensitivity >= 0.95 on the
    kit-framed crops of `val` (the first member's validation photos)."""
    from train_host.metrics import choose_threshold

    members = [checkpoint_scorer(p) for p in paths]

    def score(images: list[np.ndarray]) -> np.ndarray:
        return np.mean([m.score(images) for m in members], axis=0)

    crops, owner = kit_framed(val.images)
    thr = choose_threshold(val.binary_targets()[owner], score(crops)).value
    seen = frozenset().union(*(m.trained_on for m in members))
    return Scorer(f"ensemble({' + '.join(m.name for m in members)})", thr, score, seen)


def bundle_scorer(path: Path) -> Scorer:
    """The bundle's int8 ONNX file, run by the device's own code."""
    from device.core.bundle import load_bundle
    from device.core.screener import Screener

    bundle = load_bundle(path)
    screener = Screener(bundle, bundle.select("onnx", "int8"), threads=1)
    return Scorer(
        bundle.name,
        bundle.threshold,
        lambda images: np.array([screener.predict(im).positive_prob for im in images]),
        seen_collections(bundle.manifest.document.get("data", {})),
    )


def load_collection(root: Path) -> Dataset:
    """A collection as a binary dataset; one without an mpox folder is all negatives."""
    return load_dataset(root, "binary", allow_no_positive=True)


def grouped_auc_ci(y: np.ndarray, p: np.ndarray, groups: np.ndarray, seed: int = 0) -> list[float]:
    """95 % percentile CI of AUC, resampling whole photos (its crops are not independent)."""
    rng = np.random.default_rng(seed)
    ids, member_of = np.unique(groups, return_inverse=True)
    drawn = [
        np.bincount(rng.choice(len(ids), len(ids)), minlength=len(ids)) for _ in range(BOOTSTRAP)
    ]
    aucs = resampled_aucs(y, p, np.stack(drawn)[:, member_of])
    aucs = aucs[~np.isnan(aucs)]
    return (
        [float(q) for q in np.quantile(aucs, [0.025, 0.975])] if len(aucs) else [float("nan")] * 2
    )


def at_threshold(
    y: np.ndarray, p: np.ndarray, thr: float, groups: np.ndarray | None = None
) -> dict:
    """AUC (grouped CI when crops share a photo) where both classes exist; sensitivity and
    specificity at `thr` with Wilson intervals always; ECE."""
    m = binary_metrics(y, p, thr)
    neg, pos = y == 0, y == 1
    tn, tp = int((p[neg] < thr).sum()), int((p[pos] >= thr).sum())
    m["specificity_ci95"] = wilson(tn, int(neg.sum()))
    m["sensitivity_ci95"] = wilson(tp, int(pos.sum()))
    m["flagged"] = float((p >= thr).mean())
    if groups is not None and m["positives"] and m["positives"] < len(y):
        m["auc_ci95"] = grouped_auc_ci(y, p, groups)
    return m


def by_condition(data: Dataset, p: np.ndarray, thr: float) -> dict[str, dict]:
    """`at_threshold` for each source folder (condition) of `data` on its own."""
    folders = np.asarray(data.source_labels)
    y = data.binary_targets()
    return {c: at_threshold(y[folders == c], p[folders == c], thr) for c in np.unique(folders)}


def by_tone(images: list[np.ndarray], y: np.ndarray, p: np.ndarray, thr: float) -> dict:
    """`at_threshold` per skin-tone group (ITA of the square the model reads, Chardon's six
    groups, a group under 20 photos merged with a neighbour), lightest first, with each
    group's median ITA: a model that fails darker skin shows it here."""
    label, order, angles = tone_groups(images)
    out = {}
    for name in order:
        pick = label == name
        found = [a for a, keep in zip(angles, pick, strict=True) if keep and a is not None]
        out[name] = at_threshold(y[pick], p[pick], thr) | {
            "ita_median": float(np.median(found)) if found else None
        }
    return out


def kit_framed(images: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """All lesion crops of the photos, and the photo index of each crop."""
    crops, owner = [], []
    for i, im in enumerate(images):
        cs = lesion_crops(im)
        crops += cs
        owner += [i] * len(cs)
    return crops, np.asarray(owner)


def run_protocol(scorer: Scorer, held: Dataset, collections: dict[str, Dataset]) -> dict:
    """The protocol's numbers for one model (see the module docstring)."""
    thr = scorer.threshold
    y = held.binary_targets()
    steps = tqdm(total=2 + len(collections), desc=f"collection shift {scorer.name}")
    p_photo = scorer.score(held.images)
    steps.update()
    crops, owner = kit_framed(held.images)
    p_crop, y_crop = scorer.score(crops), y[owner]
    steps.update()
    out = {
        "model": scorer.name,
        "threshold": thr,
        "msid_heldout": at_threshold(y, p_photo, thr),
        "msid_conditions": by_condition(held, p_photo, thr),
        "msid_tones": by_tone(held.images, y, p_photo, thr),
        "kit_framing": at_threshold(y_crop, p_crop, thr, owner),
        "kit_tones": by_tone(crops, y_crop, p_crop, thr),
        "collections": {},
    }
    mpox = y_crop == 1
    for name, col in collections.items():
        p_col = scorer.score(col.images)
        yc = col.binary_targets()
        entry = {
            "as_is": at_threshold(yc, p_col, thr),
            "conditions": by_condition(col, p_col, thr),
            "tones": by_tone(col.images, yc, p_col, thr),
            "trained_on": name in scorer.trained_on,
        }
        if not yc.any():  # negatives only: kit-framed MSID mpox crops against them
            ys = np.concatenate([np.ones(mpox.sum(), int), np.zeros(len(p_col), int)])
            ps = np.concatenate([p_crop[mpox], p_col])
            groups = np.concatenate([owner[mpox], -1 - np.arange(len(p_col))])
            entry["kit_mpox_vs"] = at_threshold(ys, ps, thr, groups)
        out["collections"][name] = entry
        steps.update()
    steps.close()
    return out


def left_out(r: dict) -> list[dict]:
    """The row's collections the model was not trained on."""
    return [c for c in r["collections"].values() if not c.get("trained_on")]


def worst_auc(r: dict) -> float:
    """The weakest threshold-free discrimination where the kit is used: kit-framed MSID crops,
    and kit-framed mpox crops against each left-out collection's photos."""
    vs = [c["kit_mpox_vs"]["auc"] for c in left_out(r) if "kit_mpox_vs" in c]
    return float(min([r["kit_framing"]["auc"], *vs]))


def selection_key(r: dict) -> tuple[int, float, float, float]:
    """The default-selection rule (rows of the table in this order): the collection-shift
    protocol first (the worst kit-framing AUC, then the worst specificity at the threshold on a
    left-out collection, each rounded to 0.01: closer is noise), MSID last. The synthetic shift
    test is a diagnostic, not a selector. A row judged on fewer collections (it trained on one)
    ranks after every row judged on more: a minimum over fewer tests is an easier bar."""
    worst_spec = min((c["as_is"]["specificity"] for c in left_out(r)), default=-1.0)  # none: last
    judged = len(left_out(r))
    return (judged, round(worst_auc(r), 2), round(worst_spec, 2), r["msid_heldout"]["auc"])


def other_collections(data_root: Path) -> list[Path]:
    """The look-alike collections beside the training folder (../shared/data/*): not the
    folder itself, not the gate's development set (`GATE_ONLY`)."""
    data_root = Path(data_root).resolve()
    return sorted(
        d
        for d in data_root.parent.iterdir()
        if d.is_dir() and d != data_root and d.name[0] != "." and d.name not in GATE_ONLY
    )


def per_collection(scorer: Scorer, datasets: dict[str, Dataset]) -> dict:
    """At the model's threshold: each collection, then all pooled."""
    ys, ps, out = [], [], {}
    for name, data in datasets.items():
        y, p = data.binary_targets(), scorer.score(data.images)
        out[name] = at_threshold(y, p, scorer.threshold)
        ys.append(y)
        ps.append(p)
    out["pooled"] = at_threshold(np.concatenate(ys), np.concatenate(ps), scorer.threshold)
    return out


def cv_protocol(cv_dir: Path, msid: Dataset, collections: dict[str, Dataset]) -> dict:
    """The protocol under grouped CV: each fold's model on its own held-out fold (kit framing)
    and on every other collection. Each number is the mean over folds with a t-interval over
    folds (its CI), in the same layout as `run_protocol`, so a CV run sits in the same table."""
    from train_host.grouping import Split
    from train_host.shift_cv import fold_models

    folds = []
    for ckpt in fold_models(cv_dir).values():
        held = Split.load(ckpt.parent / "split.json").part(msid, "test")
        folds.append(run_protocol(checkpoint_scorer(ckpt), held, collections))
    out = copy.deepcopy(folds[0])  # the layout; every number below is replaced
    out["model"] = f"{cv_dir.name} (CV, {len(folds)} folds)"
    out["threshold"] = float(np.mean([f["threshold"] for f in folds]))
    parts = [("kit_framing",), ("msid_heldout",)]
    parts += [("collections", n, k) for n in collections for k in ("as_is", "kit_mpox_vs")]
    parts += [("msid_conditions", c) for c in out["msid_conditions"]]
    parts += [("collections", n, "conditions", c) for n in collections for c in conditions(out, n)]
    for part in parts:
        if not all(_dig(f, part) for f in folds):  # e.g. a condition missing from one fold
            _dig(out, part[:-1]).pop(part[-1], None)
            continue
        target = _dig(out, part)
        for key in ("auc", "sensitivity", "specificity", "flagged"):
            vals = np.array([_dig(f, part)[key] for f in folds], dtype=float)
            if np.isnan(vals).any():
                continue
            target[key], target[f"{key}_ci95"] = _mean_ci(vals)
        target["n"] = int(sum(_dig(f, part)["n"] for f in folds))
    out["folds"] = len(folds)
    for r in (out, *out["collections"].values()):  # per tone: per held-out model only (a
        for key in ("msid_tones", "kit_tones", "tones"):  # fold's groups merge differently)
            r.pop(key, None)
    return out


def conditions(r: dict, collection: str | None = None) -> dict:
    """A row's per-condition numbers: of MSID's held-out photos (None) or of a collection."""
    return (
        r["collections"][collection].get("conditions", {}) if collection else r["msid_conditions"]
    )


def _dig(d: dict, path: tuple):
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _mean_ci(vals: np.ndarray) -> tuple[float, list[float]]:
    from scipy.stats import t as student

    m = float(vals.mean())
    if len(vals) < 2:
        return m, [m, m]
    half = float(student.ppf(0.975, len(vals) - 1) * vals.std(ddof=1) / np.sqrt(len(vals)))
    return m, [m - half, m + half]
