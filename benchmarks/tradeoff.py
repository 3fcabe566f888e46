"""`mpox-bench tradeoff`: accuracy where the kit is used against the board's cost, per model.

The cost is the emulated board's instruction count per inference (`mpox-bench arm64`'s results,
a Cortex-A72 and int8 ONNX by default: counts, not time); the accuracy is the collection-shift
protocol's kit-framed mpox against a look-alike collection the model never trained on, and the
kit-framing AUC (MSID's held-out photos as the kit frames them), each with its 95 % interval
(`mpox-train collection-shift`'s JSON): a cheaper model must hold on both. A row names its
registered architecture (`--row RUN=MODEL`), since a collection-shift row is a trained run, not a
model. Every counted architecture is listed, those without an accuracy row too. JSON, Markdown
and a PNG.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks import BenchError
from benchmarks.report import write_json

COUNTS = Path("benchmarks/results/qemu-aarch64.json")
SHIFT = Path("models/collection-shift/lookalike/collection_shift.json")


def add_arguments(p) -> None:
    p.add_argument("--counts", type=Path, default=COUNTS, help=f"arm64 results (default {COUNTS})")
    p.add_argument("--shift", type=Path, default=SHIFT, help=f"collection-shift JSON ({SHIFT})")
    p.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="RUN=MODEL",
        help="a collection-shift row and its registered model (repeat)",
    )
    p.add_argument(
        "--collection",
        default=None,
        help="compare every row on this left-out collection (default: each row's worst)",
    )
    p.add_argument("--cpu", default="cortex-a72")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--precision", default="int8")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/tradeoff"))


def counts(doc: dict, cpu: str, backend: str, precision: str) -> dict[str, float]:
    """Model -> millions of instructions per inference, from `mpox-bench arm64` results."""
    rows = doc.get("sections", {}).get("arm64", {}).get("results", [])
    return {
        r["architecture"]: r["instructions_per_inference"] / 1e6
        for r in rows
        if (r["cpu"], r["backend"], r["precision"]) == (cpu, backend, precision)
    }


def accuracy(row: dict, collection: str | None) -> tuple[str, float, list[float]]:
    """(collection, AUC, 95 % CI) of kit mpox against a collection the run never trained on:
    the given one, else the run's worst."""
    left_out = {
        name: c["kit_mpox_vs"]
        for name, c in row["collections"].items()
        if not c.get("trained_on") and not math.isnan(c["kit_mpox_vs"]["auc"])
    }
    if collection is not None:
        if collection not in left_out:
            raise BenchError(f"{row['model']}: trained on {collection} (or not scored on it)")
        left_out = {collection: left_out[collection]}
    if not left_out:
        raise BenchError(f"{row['model']}: no collection it was not trained on")
    name = min(left_out, key=lambda n: left_out[n]["auc"])
    return name, left_out[name]["auc"], left_out[name]["auc_ci95"]


def table(args) -> dict:
    try:
        arm = json.loads(args.counts.read_text())
        shift = {r["model"]: r for r in json.loads(args.shift.read_text())}
    except (OSError, ValueError) as e:
        raise BenchError(f"cannot read the inputs: {e}") from None
    cost = counts(arm, args.cpu, args.backend, args.precision)
    points = []
    for spec in args.row:
        run, _, model = spec.partition("=")
        if run not in shift:
            raise BenchError(f"--row {spec}: no row {run!r} in {args.shift}")
        if model not in cost:
            raise BenchError(f"--row {spec}: no {args.cpu} count of {model!r} in {args.counts}")
        collection, auc, ci = accuracy(shift[run], args.collection)
        kit = shift[run]["kit_framing"]
        points.append(
            {
                "run": run,
                "model": model,
                "m_insns": cost[model],
                "collection": collection,
                "auc": auc,
                "auc_ci95": ci,
                "kit_framing_auc": kit["auc"],
                "kit_framing_auc_ci95": kit["auc_ci95"],
            }
        )
    return {
        "cpu": args.cpu,
        "backend": args.backend,
        "precision": args.precision,
        "points": points,
        "counted": cost,
        "without_accuracy": sorted(set(cost) - {p["model"] for p in points}),
    }


def markdown(doc: dict) -> str:
    lines = [
        f"# Accuracy where the kit is used vs {doc['cpu']} instructions ({doc['backend']} "
        f"{doc['precision']})",
        "",
        "| run | model | M instructions / inference | left-out collection | kit mpox vs it: AUC "
        "(95 % CI) | kit-framing AUC (95 % CI) |",
        "|---|---|---|---|---|---|",
    ]
    for p in doc["points"]:
        kit = _ci(p["kit_framing_auc"], p["kit_framing_auc_ci95"])
        lines.append(
            f"| {p['run']} | {p['model']} | {p['m_insns']:.1f} | {p['collection']} | "
            f"{_ci(p['auc'], p['auc_ci95'])} | {kit} |"
        )
    if doc["without_accuracy"]:
        counted = ", ".join(f"{m} {doc['counted'][m]:.1f} M" for m in doc["without_accuracy"])
        lines += ["", f"Counted, no row under the protocol: {counted}."]
    return "\n".join(lines) + "\n"


def _ci(value: float, ci: list[float]) -> str:
    return f"{value:.2f} ({ci[0]:.2f}-{ci[1]:.2f})"


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    panels = (("auc", "kit mpox vs a left-out collection"), ("kit_framing_auc", "kit framing"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for p in doc["points"]:
            value, (lo, hi) = p[key], p[f"{key}_ci95"]
            ax.errorbar(p["m_insns"], value, yerr=[[value - lo], [hi - value]], fmt="o", capsize=3)
            label = p["run"] + (f" ({p['collection']})" if key == "auc" else "")
            ax.annotate(label, (p["m_insns"], value), textcoords="offset points",
                        xytext=(6, 4), fontsize=7)  # fmt: skip
        for m in doc["without_accuracy"]:
            ax.axvline(doc["counted"][m], color="grey", lw=0.8, ls=":")
            ax.annotate(m, (doc["counted"][m], 0.52), rotation=90, fontsize=7, color="grey")
        ax.set(
            xlabel=f"M instructions per inference ({doc['cpu']}, {doc['backend']} "
            f"{doc['precision']})",
            title=f"AUC: {title}",
            ylim=(0.5, 1.0),
            xlim=(0, 1.7 * max(doc["counted"].values())),  # room for the labels
        )
    axes[0].set_ylabel("AUC (95 % CI)")
    fig.suptitle("Accuracy where the kit is used against the board's cost")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    doc = table(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out.with_suffix(".json"), doc)
    args.out.with_suffix(".md").write_text(markdown(doc))
    plot(doc, args.out.with_suffix(".png"))
    print(markdown(doc))
    return 0
