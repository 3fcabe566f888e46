"""Grouped, stratified k-fold cross-validation: the number the README and the bundle quote.

Each fold's held-out part is its test set; a grouped validation part is carved out of the rest
for early stopping and the threshold, so no held-out image influences its own score.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from train_host import UserError, distributed
from train_host.data import Dataset
from train_host.evaluate import calibrate_and_evaluate
from train_host.grouping import Split, grouped_folds, make_split
from train_host.metrics import binary_metrics, from_confusion
from train_host.report import roc_png, screening_table
from train_host.train import TrainConfig, Trainer

log = logging.getLogger(__name__)


def cross_validate(
    cfg: TrainConfig,
    data: Dataset,
    groups: np.ndarray,
    out: Path,
    k: int = 5,
    val_fraction: float = 0.15,
    resume: bool = False,
    only: set[int] | None = None,
) -> dict | None:
    """Train k models; returns the summary on the main process once every fold is done.

    `only` (1-based fold numbers) runs some folds, e.g. one process per core; a later run with
    `resume` (or the last of the parallel runs) writes the summary. With teachers, each of
    `cfg.teacher` is a teacher's own CV folder: fold i is distilled from the teacher(s) of fold i,
    which never saw fold i's held-out images (one teacher for all folds would have seen them all).
    """
    folds = grouped_folds(data.labels, groups, k, cfg.seed)
    files = data.relpaths()
    oof = np.full((len(data), len(data.class_names)), np.nan)
    per_fold, pending = [], []
    for i, (pool, test) in enumerate(folds):
        fold_dir = out / f"fold{i + 1}"
        if (resume or only) and (fold_dir / "metrics.json").is_file():
            per_fold.append(json.loads((fold_dir / "metrics.json").read_text()))
            _fill_fold_probs(oof, fold_dir, data)
            continue
        if only and i + 1 not in only:
            pending.append(i + 1)
            continue
        split = make_split(
            files, data.labels, groups, cfg.seed, val_fraction, 0, pool=pool, test=test
        )
        fold_cfg = _fold_teacher(cfg, split, i + 1)
        trainer = Trainer(
            fold_cfg, data, split, fold_dir, resume=resume and (fold_dir / "last.pt").is_file()
        )
        best = trainer.run()
        if distributed.setup().main:
            per_fold.append(
                calibrate_and_evaluate(
                    best, data.subset(split.val), data.subset(split.test), fold_dir, trainer.history
                )
            )
            _fill_fold_probs(oof, fold_dir, data)
        distributed.setup().barrier()
    if not distributed.setup().main:
        return None
    if pending:
        log.info("folds %s not run yet: no summary (run them, then --resume)", pending)
        return None
    return summarise(per_fold, oof, data, out, cfg, k)


def _fold_teacher(cfg: TrainConfig, split: Split, fold: int) -> TrainConfig:
    """The fold's own teacher(s) from each teacher's CV folder, checked to share the fold's
    split."""
    return dataclasses.replace(cfg, teacher=[_fold_member(t, split, fold) for t in cfg.teacher])


def _fold_member(teacher: str, split: Split, fold: int) -> str:
    root = Path(teacher)
    if not root.is_dir():
        raise UserError(
            f"cv --teacher takes the teacher's cv folder (fold1/best.pt, ...), not {root}: "
            "one teacher trained on a single split has seen other folds' held-out images"
        )
    ckpt, split_file = root / f"fold{fold}" / "best.pt", root / f"fold{fold}" / "split.json"
    if not ckpt.is_file() or not split_file.is_file():
        raise UserError(f"teacher fold {fold} is missing: {ckpt} (run the teacher's cv first)")
    theirs = Split.load(split_file)
    if theirs.files != split.files or sorted(theirs.test) != sorted(split.test):
        raise UserError(
            f"teacher fold {fold} ({split_file}) held out other images than this fold: "
            "use the same data, --folds, --seed and --val-fraction for both"
        )
    return str(ckpt)


def _fill_fold_probs(oof: np.ndarray, fold_dir: Path, data: Dataset) -> None:
    """Copy a fold's held-out probabilities (predictions.csv) into the out-of-fold matrix."""
    index = {f: i for i, f in enumerate(data.relpaths())}
    with (fold_dir / "predictions.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            oof[index[row["file"]]] = [float(row[f"p_{c}"]) for c in data.class_names]


def summarise(per_fold: list[dict], oof: np.ndarray, data: Dataset, out: Path, cfg, k: int) -> dict:
    aucs = np.array([f["test"]["screening"]["auc"] for f in per_fold])
    y = data.binary_targets()
    p = oof[:, data.positive_index]
    thresholds = np.array([f["threshold"]["value"] for f in per_fold])
    # Pooled AUC ranks all out-of-fold scores together; the pooled operating point sums each
    # fold's confusion matrix at that fold's own validation threshold (the median is only a label).
    pooled = binary_metrics(y, p, float(np.median(thresholds)))
    pooled.update(
        from_confusion(sum(np.array(f["test"]["screening"]["confusion"]) for f in per_fold))
    )
    fold_sens = [f["test"]["screening"]["sensitivity"] for f in per_fold]
    fold_spec = [f["test"]["screening"]["specificity"] for f in per_fold]
    summary = {
        "model": cfg.model,
        "task": data.task,
        "folds": k,
        "grouped": True,
        "auc_mean": float(aucs.mean()),
        "auc_sd": float(aucs.std(ddof=1)) if k > 1 else 0.0,
        "auc_per_fold": aucs.tolist(),
        "sensitivity_mean": float(np.mean(fold_sens)),
        "specificity_mean": float(np.mean(fold_spec)),
        "pooled": pooled,
        "thresholds": thresholds.tolist(),
        "config": cfg.__dict__,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "cv.json").write_text(json.dumps(summary, indent=1))
    roc_png(out / "cv_roc_pooled.png", y, p, pooled)
    _fold_png(out / "cv_folds.png", aucs, fold_sens, fold_spec)
    _cv_markdown(out / "cv_report.md", summary, per_fold)
    return summary


def _fold_png(path: Path, aucs, sens, spec) -> None:
    x = np.arange(1, len(aucs) + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(x - 0.25, aucs, 0.25, label="AUC")
    ax.bar(x, sens, 0.25, label="sensitivity")
    ax.bar(x + 0.25, spec, 0.25, label="specificity")
    ax.set(xlabel="fold", ylim=(0.5, 1.0), title="Grouped k-fold: held-out fold per model")
    ax.set_xticks(x)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cv_markdown(path: Path, s: dict, per_fold: list[dict]) -> None:
    rows = {f"fold {i + 1}": f["test"] for i, f in enumerate(per_fold)}
    rows["pooled"] = {"screening": s["pooled"]}
    lines = [
        f"# {s['model']} ({s['task']}): grouped {s['folds']}-fold cross-validation",
        "",
        f"ROC AUC **{s['auc_mean']:.3f} +- {s['auc_sd']:.3f}** (mean +- sd over folds); pooled "
        f"out-of-fold AUC {s['pooled']['auc']:.3f}.",
        f"Mean sensitivity {s['sensitivity_mean']:.3f}, specificity {s['specificity_mean']:.3f} "
        "at each fold's validation-chosen threshold.",
        "",
        *screening_table(rows),
        "",
        "Splits keep pHash near-duplicate groups on one side; each fold's threshold and best epoch "
        "come from a grouped validation part of its training folds. Plots: `cv_roc_pooled.png`, "
        "`cv_folds.png`; per-fold reports in `foldN/`.",
    ]
    path.write_text("\n".join(lines) + "\n")
