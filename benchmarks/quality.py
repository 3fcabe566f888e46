"""`mpox-bench quality`: calibrate and check the image-quality gate on real photos.

Every photo of every collection is assessed clean and strongly degraded: Gaussian blur (sigma
`--blur` px at the model's 224 px, scaled to the photo), under-exposure (x `--dark`) and
over-exposure (x `--bright`, clipped). Reported, per collection, pooled and pooled per skin-tone
group (ITA of the clean photo, device/core/skin_tone.py): clean photos wrongly refused (target <= 5
%)
and degraded photos caught (target >= 90 %), at the config's limits; with
`--fit`, the limits that meet the clean target with the most margin are printed too.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np

from benchmarks import BenchError, plots
from device.core.images import EXTENSIONS, UnreadableImage, read_rgb
from device.core.quality import SIDE, QualityLimits, assess, judge
from device.core.skin_tone import group_of, ita, reported

TARGETS = {"clean_refused": 0.05, "degraded_caught": 0.90}
DEFAULTS = QualityLimits()  # the limits the kit ships
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "quality"


def add_arguments(p) -> None:
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of collections")
    p.add_argument("--stride", type=int, default=1, help="every Nth photo (1 = all)")
    p.add_argument("--blur", type=float, default=3.0, help="blur sigma at 224 px")
    p.add_argument("--dark", type=float, default=0.12, help="under-exposure gain")
    p.add_argument("--bright", type=float, default=3.5, help="over-exposure gain")
    p.add_argument("--out", type=Path, default=OUT, help="OUT.json/.md/.png")


def degrade(img: np.ndarray, kind: str, args) -> np.ndarray:
    if kind == "blur":
        return cv2.GaussianBlur(img, (0, 0), args.blur * min(img.shape[:2]) / SIDE)
    gain = args.dark if kind == "dark" else args.bright
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def photos(root: Path, stride: int, skip: frozenset[str] = frozenset()) -> dict[str, list[Path]]:
    """Every collection's photos (every `stride`th), the folders named in `skip` left out."""
    if not root.is_dir():
        raise BenchError(f"no data folder {root} (pass --data)")
    found = {
        d.name: sorted(p for p in d.rglob("*") if p.suffix.lower() in EXTENSIONS)[::stride]
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name not in skip
    }
    found = {k: v for k, v in found.items() if v}
    if not found:
        raise BenchError(f"no photos under {root}")
    return found


KINDS = ("clean", "blur", "dark", "bright")


def measure(sets: dict[str, list[Path]], args) -> dict[str, dict[str, list[dict]]]:
    """Per collection and kind, the quality of every photo (at the default limits)."""
    out: dict[str, dict[str, list[dict]]] = {}
    total, done = sum(map(len, sets.values())), 0
    for name, paths in sets.items():
        out[name] = {k: [] for k in KINDS}
        for path in paths:
            done += 1
            print(f"\rquality: {done}/{total} photos", end="", file=sys.stderr, flush=True)
            try:
                img = read_rgb(path)
            except UnreadableImage:
                continue
            tone = group_of(ita(img))  # the clean photo's skin tone, for every version of it
            for kind in KINDS:
                q = assess(img if kind == "clean" else degrade(img, kind, args), DEFAULTS)
                out[name][kind].append(q.as_dict() | {"tone": tone})
    print(file=sys.stderr)
    return out


def refused(rows: list[dict], limits: QualityLimits) -> float:
    """Share refused by `limits`, re-deciding from the stored measurements."""
    keys = ("focus", "mean", "dark", "bright", "glare")
    bad = [judge(*(r[k] for k in keys), limits) is not None for r in rows]
    return float(np.mean(bad)) if bad else float("nan")


def table(m: dict, limits: QualityLimits) -> dict:
    """Per collection, pooled, and pooled per skin-tone group (a gate that refused dark skin as
    "too dark" would refuse the patients the kit is for)."""
    rows = {}
    for name, kinds in {**m, "pooled": _pooled(m), **_by_tone(_pooled(m))}.items():
        rows[name] = {"n": len(kinds["clean"]), "clean_refused": refused(kinds["clean"], limits)}
        rows[name].update({f"{k}_caught": refused(kinds[k], limits) for k in KINDS[1:]})
    return rows


def _pooled(m: dict) -> dict:
    return {k: [r for kinds in m.values() for r in kinds[k]] for k in KINDS}


def _by_tone(pooled: dict) -> dict:
    """Every kind's rows split by the clean photo's reported tone group (the degraded versions
    of a photo share its row order and its tone)."""
    label, order = reported([r["tone"] for r in pooled["clean"]])
    return {
        f"tone: {g}": {
            k: [r for r, t in zip(pooled[k], label, strict=True) if t == g] for k in KINDS
        }
        for g in order
    }


def fit(m: dict) -> QualityLimits:
    """Loosest focus and glare limits that still catch >= 90 % of the degraded photos, i.e.
    the fewest clean photos refused."""
    pooled, base = _pooled(m), DEFAULTS
    focus = float(np.quantile([r["focus"] for r in pooled["blur"]], TARGETS["degraded_caught"]))
    glare = float(np.quantile([r["glare"] for r in pooled["clean"]], 0.99))
    return replace(base, min_focus=round(focus * 1.2, 1), max_glare=round(max(glare, 0.15), 2))


def markdown(rows: dict, limits: QualityLimits, args) -> str:
    lines = [
        "# Image-quality gate on real photos",
        "",
        f"Limits (config defaults): `{json.dumps(asdict(limits))}`. Degradations: blur sigma "
        f"{args.blur} px at {SIDE} px, exposure x{args.dark} and x{args.bright}. Targets: clean "
        f"refused <= {TARGETS['clean_refused']:.0%}, degraded caught >= "
        f"{TARGETS['degraded_caught']:.0%}.",
        "",
        "| collection | photos | clean refused | blur caught | dark caught | bright caught |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['n']} | {r['clean_refused']:.1%} | {r['blur_caught']:.1%} | "
            f"{r['dark_caught']:.1%} | {r['bright_caught']:.1%} |"
        )
    return "\n".join(lines) + "\n"


def plot(m: dict, limits: QualityLimits, path: Path) -> None:
    plt = plots.pyplot()
    if plt is None:
        return
    pooled = _pooled(m)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.logspace(-1, 4, 50)
    for kind in ("clean", "blur"):
        axes[0].hist([max(r["focus"], 0.11) for r in pooled[kind]], bins, alpha=0.6, label=kind)
    axes[0].set_xscale("log")
    axes[0].axvline(limits.min_focus, c="k", ls="--", lw=1)
    axes[0].set(xlabel="focus: variance of the Laplacian (224 px)", ylabel="photos")
    for kind in ("clean", "dark", "bright"):
        axes[1].hist(
            [r["mean"] for r in pooled[kind]], np.linspace(0, 255, 52), alpha=0.6, label=kind
        )
    for v in (limits.min_mean, limits.max_mean):
        axes[1].axvline(v, c="k", ls="--", lw=1)
    axes[1].set(xlabel="mean grey level", ylabel="photos")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(
        "quality gate: clean vs strongly degraded real photos (dashed: limits)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    from train_host.data import GATE_ONLY

    m = measure(photos(args.data, args.stride, skip=GATE_ONLY), args)
    limits = DEFAULTS
    rows = table(m, limits)
    suggested = fit(m)
    doc = {
        "limits": asdict(limits),
        "targets": TARGETS,
        "degradations": {
            "blur_sigma_224": args.blur,
            "dark_gain": args.dark,
            "bright_gain": args.bright,
        },
        "results": rows,
        "fitted_limits": asdict(suggested),
        "fitted_results": table(m, suggested)["pooled"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    args.out.with_suffix(".md").write_text(markdown(rows, limits, args))
    plot(m, limits, args.out.with_suffix(".png"))
    print(markdown(rows, limits, args))
    p = rows["pooled"]
    ok = (
        p["clean_refused"] <= TARGETS["clean_refused"]
        and min(p[f"{k}_caught"] for k in KINDS[1:]) >= TARGETS["degraded_caught"]
    )
    print(f"targets {'met' if ok else 'NOT met'}; fitted limits: {asdict(suggested)}")
    return 0
