"""PNG plots and a markdown report for one evaluated set."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import ConfusionMatrixDisplay, roc_curve

from train_host.data import Dataset


def plots(out: Path, data: Dataset, probs: np.ndarray, metrics: dict, threshold: dict, history):
    y, p = data.binary_targets(), probs[:, data.positive_index]
    s = metrics["screening"]
    if y.min() != y.max():
        roc_png(out / "roc.png", y, p, s)
    confusion_png(out / "confusion.png", np.asarray(s["confusion"]), ["other", "mpox"])
    if "multiclass" in metrics:
        mc = metrics["multiclass"]
        confusion_png(
            out / "confusion_multiclass.png", np.asarray(mc["confusion"]), mc["class_names"]
        )
    reliability_png(out / "reliability.png", y, p, s["ece"])
    if history:
        curves_png(out / "curves.png", history)


def roc_png(path: Path, y: np.ndarray, p: np.ndarray, s: dict) -> None:
    fpr, tpr, _ = roc_curve(y, p)
    lo, hi = s["auc_ci95"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, lw=2, label=f"AUC {s['auc']:.3f} (95% CI {lo:.3f}-{hi:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.scatter(
        [1 - s["specificity"]],
        [s["sensitivity"]],
        c="red",
        zorder=3,
        label=f"threshold {s['threshold']:.3f}: sens {s['sensitivity']:.2f}, "
        f"spec {s['specificity']:.2f}",
    )
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=f"ROC, mpox vs other (n={s['n']})")
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def confusion_png(path: Path, cm: np.ndarray, names: list[str]) -> None:
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 1.2 * len(names) + 2))
    ConfusionMatrixDisplay(cm, display_labels=names).plot(ax=ax, colorbar=False, cmap="Blues")
    ax.set_title("Confusion matrix (rows: truth)")
    _save(fig, path)


def reliability_png(path: Path, y: np.ndarray, p: np.ndarray, ece: float) -> None:
    frac, mean_p = calibration_curve(y, p, n_bins=10, strategy="uniform")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    ax.plot(mean_p, frac, marker="o", label=f"model (ECE {ece:.3f})")
    ax.set(xlabel="predicted P(mpox)", ylabel="observed fraction mpox", title="Reliability")
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def curves_png(path: Path, history: list[dict]) -> None:
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], label="train loss")
    a.plot(ep, [h["val_loss"] for h in history], label="val loss")
    a.set(xlabel="epoch", title="Loss")
    a.legend()
    b.plot(ep, [h["val_auc"] for h in history], c="green")
    b.set(xlabel="epoch", ylabel="ROC AUC", title="Validation AUC (mpox vs other)")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(v: float) -> str:
    return "n/a" if v != v else f"{v:.3f}"


def screening_table(rows: dict[str, dict]) -> list[str]:
    """Markdown table of screening metrics, one row per evaluated set."""
    lines = [
        "| set | n | AUC (95% CI) | sensitivity | specificity | precision | F1 | accuracy | ECE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        s = m["screening"]
        lo, hi = s["auc_ci95"]
        lines.append(
            f"| {name} | {s['n']} | {_fmt(s['auc'])} ({_fmt(lo)}-{_fmt(hi)}) | "
            f"{_fmt(s['sensitivity'])} | {_fmt(s['specificity'])} | {_fmt(s['precision'])} | "
            f"{_fmt(s['f1'])} | {_fmt(s['accuracy'])} | {_fmt(s['ece'])} |"
        )
    return lines


def markdown(path: Path, ckpt: dict, result: dict) -> None:
    thr = result["threshold"]
    sets = {k: result[k] for k in ("val", "test", "folder") if k in result}
    lines = [
        f"# {ckpt['model']} ({ckpt['task']}): evaluation",
        "",
        f"Classes: {', '.join(ckpt['class_names'])}; positive class `{ckpt['positive_class']}`.",
        f"Decision threshold on P(mpox): **{thr['value']:.4f}** ({thr['rule']}, chosen on the "
        f"{thr.get('chosen_on', 'validation split')} only).",
        "",
        *screening_table(sets),
        "",
    ]
    if "val" in sets:
        lines.append(
            "The `val` row is optimistic: the threshold and the best epoch were chosen on it."
        )
    for name, m in sets.items():
        if "multiclass" in m:
            mc = m["multiclass"]
            lines.append(
                f"\n{name}, all {len(mc['class_names'])} classes: accuracy {mc['accuracy']:.3f}, "
                f"macro-F1 {mc['macro_f1']:.3f}, ECE {mc['ece']:.3f}."
            )
    lines += [
        "",
        "Plots: `roc.png`, `confusion.png`, `reliability.png`"
        + (", `curves.png`" if (path.parent / "curves.png").exists() else "")
        + ". Per-image probabilities: `predictions.csv`.",
        "",
        "A screening aid, not a diagnosis.",
    ]
    path.write_text("\n".join(lines) + "\n")
