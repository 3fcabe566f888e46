"""The shift test under cross-validation: every image scored by the fold model that held it out.

The single-split shift test scores 201 images with one model. A `mpox-train cv` run has one model
per fold; scoring each fold's held-out part under the same shifts scores every MSID image once,
gives a spread over folds and, between CV runs made on the same folds (same seed), a paired
difference: what "keep only what helps both CV and the shift test" should be judged on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from train_host import UserError
from train_host.checkpoint import load_model
from train_host.data import Dataset, load_dataset
from train_host.grouping import Split
from train_host.shift import SHIFTS, plot, shift_scores, summarise


def fold_models(cv_dir: Path) -> dict[int, Path]:
    """Fold number -> best.pt, for the folds that finished (metrics.json written)."""
    found = {}
    for ckpt in cv_dir.glob("fold*/best.pt"):
        m = re.fullmatch(r"fold(\d+)", ckpt.parent.name)
        if m and (ckpt.parent / "metrics.json").is_file():
            found[int(m.group(1))] = ckpt
    if not found:
        raise UserError(f"{cv_dir} has no finished fold (foldN/best.pt): run `mpox-train cv` first")
    return dict(sorted(found.items()))


def fold_test_part(data: Dataset, split_path: Path) -> Dataset:
    return Split.load(split_path).part(data, "test")


def fold_shift_test(
    ckpt_path: Path, datasets: dict[str, Dataset], data_root: Path, progress: bool
) -> dict:
    """One fold's result, kept in foldN/shift_test.json while that is newer than best.pt and
    from the same data (a CV still running adds folds; comparing runs again should not redo the
    finished ones)."""
    cache, source = ckpt_path.parent / "shift_test.json", str(Path(data_root).resolve())
    if cache.is_file() and cache.stat().st_mtime >= ckpt_path.stat().st_mtime:
        result = json.loads(cache.read_text())
        if result.get("data") == source and set(result["auc"]) == {"clean", *SHIFTS}:
            return result
    model, ckpt = load_model(ckpt_path)
    if ckpt["task"] not in datasets:
        datasets[ckpt["task"]] = load_dataset(data_root, ckpt["task"])
    part = fold_test_part(datasets[ckpt["task"]], ckpt_path.parent / "split.json")
    result = summarise(part.binary_targets(), shift_scores(model, ckpt, part, progress))
    result["data"] = source
    cache.write_text(json.dumps(result, indent=1))
    return result


def cv_shift_test(cv_dir: Path, data_root: Path, progress: bool = True) -> dict:
    """Per fold: the shift test on that fold's test part; plus the mean and sd over folds."""
    datasets: dict[str, Dataset] = {}
    folds = {
        k: fold_shift_test(ckpt_path, datasets, data_root, progress)
        for k, ckpt_path in fold_models(cv_dir).items()
    }
    shifted = np.array([f["mean_shift_auc"] for f in folds.values()])
    conditions = ["clean", *SHIFTS]
    return {
        "folds": folds,
        "n": int(sum(f["n"] for f in folds.values())),
        "auc": {c: float(np.mean([f["auc"][c] for f in folds.values()])) for c in conditions},
        "mean_shift_auc": float(shifted.mean()),
        "mean_shift_auc_sd": float(shifted.std(ddof=1)) if len(shifted) > 1 else 0.0,
        "worst_shift_auc": float(np.mean([f["worst_shift_auc"] for f in folds.values()])),
    }


def paired(base: dict, other: dict) -> dict:
    """Per-fold differences of `other` minus `base` on the folds both have."""
    common = sorted(set(base["folds"]) & set(other["folds"]))

    def diff(get) -> list[float]:
        return [get(other["folds"][k]) - get(base["folds"][k]) for k in common]

    shift = diff(lambda f: f["mean_shift_auc"])
    return {
        "folds": common,
        "mean_shift_auc": float(np.mean(shift)),
        "folds_up": int(sum(d > 0 for d in shift)),
        "clean_auc": float(np.mean(diff(lambda f: f["auc"]["clean"]))),
    }


def compare(runs: dict[str, dict]) -> dict[str, dict]:
    """Each run after the first, paired with the first (the baseline)."""
    names = list(runs)
    return {n: paired(runs[names[0]], runs[n]) for n in names[1:]}


def write(out: Path, runs: dict[str, dict]) -> None:
    """shift_cv.json, shift_cv.md and shift_cv.png (mean AUC over folds per condition)."""
    out.mkdir(parents=True, exist_ok=True)
    pairs = compare(runs)
    (out / "shift_cv.json").write_text(json.dumps({"runs": runs, "paired": pairs}, indent=1))
    plot(runs, out / "shift_cv.png", "AUC of P(mpox), each fold's held-out part, mean over folds")
    first = next(iter(runs))
    lines = [
        "# Shift test under grouped cross-validation",
        "",
        "Each fold's model on its own held-out fold, clean and under the ten shifts of "
        "`train_host/shift.py`; mean +- sd over folds. Paired: per-fold difference to "
        f"`{first}` on the folds both runs have.",
        "",
        "| run | folds | images | clean AUC | mean shifted AUC | worst shift (mean) "
        "| paired shift | paired clean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        p = pairs.get(name)
        paired_cells = (
            f"{p['mean_shift_auc']:+.3f} ({p['folds_up']} of {len(p['folds'])} folds up) | "
            f"{p['clean_auc']:+.3f}"
            if p
            else "baseline | baseline"
        )
        lines.append(
            f"| {name} | {','.join(map(str, r['folds']))} | {r['n']} | {r['auc']['clean']:.3f} | "
            f"{r['mean_shift_auc']:.3f} +- {r['mean_shift_auc_sd']:.3f} | "
            f"{r['worst_shift_auc']:.3f} | {paired_cells} |"
        )
    (out / "shift_cv.md").write_text("\n".join(lines) + "\n")
