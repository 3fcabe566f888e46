"""PNG pictures of the benchmark results (matplotlib, in the `device` extra; without it, no PNG)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)
LABELS = {
    "p50_ms": "p50 latency per image, preprocessing + inference (ms)",
    "auc": "ROC AUC of P(mpox)",
}
MARKERS = {
    ("onnx", "fp32"): "o",
    ("onnx", "int8"): "s",
    ("tflite", "fp32"): "^",
    ("tflite", "int8"): "D",
}


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("no PNG: matplotlib is missing (pip install matplotlib)")
        return None
    return plt


def _plain_log_axes(ax, x: bool = True, y: bool = True) -> None:
    """Log scale with plain numbers (2, 5, 10) instead of 10^x labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    for on, axis, setter in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if on:
            setter("log")
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(fmt)
            axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _colours(names: list[str]) -> dict[str, tuple]:
    plt = pyplot()
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(dict.fromkeys(names))}


def latency_vs_macs(rows: list[dict], title: str, path: Path) -> bool:
    """One panel per thread count: p50 against MACs, bubble area ~ file size."""
    plt = pyplot()
    rows = [r for r in rows if r.get("macs") and r.get("p50_ms")]
    if plt is None or not rows:
        return False
    threads = sorted({r["threads"] for r in rows})
    colours = _colours([r["model"] for r in rows])
    fig, axes = plt.subplots(
        1, len(threads), figsize=(6.5 * len(threads), 5.2), squeeze=False, sharey=True
    )
    for ax, t in zip(axes[0], threads, strict=True):
        for r in (r for r in rows if r["threads"] == t):
            ax.scatter(
                r["macs"] / 1e6,
                r["p50_ms"],
                s=40 + 25 * r["size_mb"],
                c=[colours[r["model"]]],
                marker=MARKERS.get((r["backend"], r["precision"]), "o"),
                alpha=0.7,
                edgecolors="black",
                linewidths=0.5,
            )
        for model in dict.fromkeys(r["model"] for r in rows if r["threads"] == t):
            mine = [r for r in rows if r["threads"] == t and r["model"] == model]
            best = min(mine, key=lambda r: r["p50_ms"])
            ax.annotate(
                model,
                (best["macs"] / 1e6, best["p50_ms"]),
                fontsize=8,
                xytext=(6, -10),
                textcoords="offset points",
            )
        _plain_log_axes(ax)
        ax.set_xlabel("multiply-accumulates per image (millions)")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("p50 latency (ms)")
    handles = [
        plt.Line2D([], [], marker=m, ls="", color="grey", label=f"{b} {p}")
        for (b, p), m in MARKERS.items()
    ]
    axes[0][-1].legend(handles=handles, title="bubble area ~ file size", fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def pareto(rows: list[dict], x: str, y: str, title: str, path: Path) -> bool:
    """y (higher is better) against x (lower is better); the Pareto front joined by a line."""
    plt = pyplot()
    rows = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    if plt is None or not rows:
        return False
    colours = _colours([r["bundle"] for r in rows])
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    for r in rows:
        ax.scatter(
            r[x],
            r[y],
            s=70,
            c=[colours[r["bundle"]]],
            marker=MARKERS.get((r["backend"], r["precision"]), "o"),
            edgecolors="black",
            linewidths=0.5,
            label=r["bundle"],
        )
        ax.annotate(
            f"{r['backend']} {r['precision']}",
            (r[x], r[y]),
            fontsize=7,
            xytext=(5, 4),
            textcoords="offset points",
        )
    front = pareto_front(rows, x, y)
    ax.plot(
        [r[x] for r in front], [r[y] for r in front], "k--", lw=1, alpha=0.6, label="Pareto front"
    )
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="best")
    _plain_log_axes(ax, y=False)
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def pareto_front(rows: list[dict], x: str, y: str) -> list[dict]:
    """Rows no other row beats on both: lower x and higher y; sorted by x."""
    front, best = [], float("-inf")
    for r in sorted(rows, key=lambda r: (r[x], -r[y])):
        if r[y] > best:
            front.append(r)
            best = r[y]
    return front
