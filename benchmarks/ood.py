"""`mpox-bench ood`: how often the kit says "Cannot judge", on what it should and should not.

Through the device's own code (bundle, preprocessing, runtime, `device.core.ood`), on:
- non-skin photographs that ship with scikit-image, scikit-learn and matplotlib (a cat, coffee,
  a rocket, the Hubble deep field, a page of text...): should be refused (target >= 90 %);
- the generated demo frames (drawn skin, drawn spots);
- real lesion photos of every collection in the data folder, whole and as kit-framed crops:
  should be judged (target <= 5 % refused), on collections the model never saw as well.
Rates with Wilson 95 % intervals, to OUT.json/.md/.png.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks import BenchError, plots
from benchmarks.quality import DEFAULT_DATA, photos
from device.core.bundle import default_bundle_dir, load_bundle
from device.core.images import UnreadableImage, read_rgb
from device.core.screener import Screener
from device.core.skin import MIN_SKIN
from device.core.skin_tone import tone_groups
from device.core.stats import wilson

# issue 28's: lesion photos refused <= 5 % in every collection and skin-tone group (was 10 %)
TARGETS = {"non_skin_refused": 0.90, "lesion_refused": 0.05, "objects_not_likely": 0.95}
OUT = Path(__file__).resolve().parent / "results" / "ood"
# scikit-image's photographs and drawings that ship in its wheel (no download); chelsea is cat,
# the synthetic test patterns (blobs, checkerboard, phantom) are left out
SKIMAGE = [
    *("astronaut", "brick", "camera", "cat", "cell", "clock", "coffee", "coins", "colorwheel"),
    *("grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo"),
    *("microaneurysms", "moon", "page", "retina", "rocket", "text"),
]


def add_arguments(p) -> None:
    p.add_argument("--bundle", type=Path, default=None, help="bundle (default: models/DEFAULT)")
    p.add_argument("--backend", default="onnx", choices=("onnx", "tflite"))
    p.add_argument("--precision", default="int8", choices=("fp32", "int8"))
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of collections")
    p.add_argument("--stride", type=int, default=1, help="every Nth lesion photo (1 = all)")
    p.add_argument("--no-crops", action="store_true", help="whole photos only")
    p.add_argument("--out", type=Path, default=OUT, help="OUT.json/.md/.png")


def _rgb(im: np.ndarray) -> np.ndarray:
    """Any sample image as 8-bit RGB."""
    im = np.asarray(im)
    if im.dtype != np.uint8:
        im = im.astype(np.float64)
        im = (255 * (im - im.min()) / max(float(np.ptp(im)), 1e-9)).astype(np.uint8)
    if im.ndim == 2:
        im = np.stack([im] * 3, -1)
    return np.ascontiguousarray(im[..., :3])


def non_skin_images() -> dict[str, np.ndarray]:
    """Photographs and drawings that ship inside scikit-image, scikit-learn and matplotlib."""
    import matplotlib
    import skimage.data
    import sklearn.datasets

    found = {f"skimage/{n}": _rgb(getattr(skimage.data, n)()) for n in SKIMAGE}
    samples = sklearn.datasets.load_sample_images()
    for name, im in zip(samples.filenames, samples.images, strict=True):
        found[f"sklearn/{Path(name).stem}"] = _rgb(im)
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for name in ("grace_hopper.jpg", "logo2.png", "Minduka_Present_Blue_Pack.png"):
        found[f"matplotlib/{name}"] = read_rgb(sample / name)
    return found


def demo_frames(count: int = 8) -> dict[str, np.ndarray]:
    from device.live.sources.demo import skin_scene

    return {
        f"demo/{s}": cv2.cvtColor(skin_scene(640, 480, seed=s), cv2.COLOR_BGR2RGB)
        for s in range(count)
    }


def _read_all(paths: list[Path]) -> list[np.ndarray]:
    images = []
    for p in paths:
        try:
            images.append(read_rgb(p))
        except UnreadableImage:
            continue
    return images


def gate_sets(root: Path, held_out: bool = False) -> dict[str, list[np.ndarray]]:
    """The gate's own development set beside the collections (nonskin/: objects, animals, food,
    rooms; plain skin without lesions), when it is there. `held_out`: of the objects only the
    half a lesion check never learns from (`train_host.data.trains_probe`), so a gate is not
    judged on its own training photos."""
    from train_host.data import GATE_ONLY, photo_key, trains_probe

    def judged(gate: str, name: str, path: Path) -> bool:
        return not (held_out and name == "objects" and trains_probe(photo_key(gate, path)))

    return {
        f"{gate}/{name}": _read_all([p for p in paths if judged(gate, name, p)])
        for gate in sorted(GATE_ONLY)
        if (root / gate).is_dir()
        for name, paths in photos(root / gate, 1).items()
    }


def lesion_sets(root: Path, stride: int, crops: bool) -> dict[str, list[np.ndarray]]:
    from train_host.data import GATE_ONLY

    sets: dict[str, list[np.ndarray]] = {}
    for name, paths in photos(root, stride, skip=GATE_ONLY).items():
        images = _read_all(paths)
        sets[name] = images
        if crops:
            from train_host.kitframe import lesion_crops

            sets[f"{name} (kit crops)"] = [c for im in images for c in lesion_crops(im)[:2]]
    return sets


def predict(screener: Screener, sets: dict[str, list[np.ndarray]]) -> dict[str, list]:
    return {
        n: [screener.predict(im) for im in tqdm(ims, desc=n, leave=False)]
        for n, ims in sets.items()
    }


def rates(preds: dict[str, list], limit: float) -> dict[str, dict]:
    """Per set: refused (no verdict) and why: the model's score over its limit, or no skin in
    the square (device.core.skin); the scores for the plot."""
    out = {}
    for name, ps in preds.items():
        n, k = len(ps), sum(not p.judgeable for p in ps)
        out[name] = {"n": n, "refused": k / n, "ci95": wilson(k, n)}
        out[name]["by_score"] = sum(p.ood_score > limit for p in ps) / n
        out[name]["by_skin"] = sum(p.no_skin for p in ps) / n
        likely = sum(p.judgeable and p.positive for p in ps)
        out[name]["mpox_likely"], out[name]["likely_ci95"] = likely / n, wilson(likely, n)
        out[name]["scores"] = [round(p.ood_score, 3) for p in ps]
    return out


def tone_rates(sets: dict[str, list[np.ndarray]], preds: dict[str, list]) -> dict[str, dict]:
    """Whole lesion photos of every collection pooled, per skin-tone group (device.core.skin_tone,
    small groups merged): refused and why, with Wilson intervals. A gate that refuses dark
    skin refuses the patients the kit is for."""
    names = [n for n in sets if not n.endswith("(kit crops)")]
    images = [im for n in names for im in sets[n]]
    ps = [p for n in names for p in preds[n]]
    label, order, _ = tone_groups(images)
    out: dict[str, dict] = {}
    for group in order:
        picked = [p for p, g in zip(ps, label, strict=True) if g == group]
        n, k = len(picked), sum(not p.judgeable for p in picked)
        out[group] = {"n": n, "refused": k / n, "ci95": wilson(k, n)}
    return out


def markdown(doc: dict) -> str:
    lines = [
        f"# Cannot judge: {doc['bundle']} ({doc['file']})",
        "",
        f"Limit {doc['limit']:.3g}; no skin below {doc['min_skin']:.0%} of the square "
        "(either refuses). Targets: non-skin refused >= "
        f"{TARGETS['non_skin_refused']:.0%}, lesion photos refused <= "
        f"{TARGETS['lesion_refused']:.0%}.",
        "",
        "| set | images | refused | 95 % CI | by the score | by no skin | should be |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, should in (("non_skin", "refused"), ("demo", "refused"), ("lesions", "judged")):
        for name, r in doc[group].items():
            lo, hi = r["ci95"]
            lines.append(
                f"| {name} | {r['n']} | {r['refused']:.1%} | {lo:.1%}-{hi:.1%} | "
                f"{r['by_score']:.1%} | {r['by_skin']:.1%} | {should} |"
            )
    missed = ", ".join(doc["non_skin_judged"]) or "none"
    lines += ["", f"Non-skin photographs the kit still judges: {missed}."]
    if doc.get("gate_sets"):
        lines += [
            "",
            'The gate\'s development set (`nonskin/`): refused, and told "Mpox likely" '
            f'(targets: objects refused or not "likely" >= {TARGETS["objects_not_likely"]:.0%}, '
            'plain skin not "likely" >= 90 %).'
            + (
                " Objects: only the half the lesion check never learned from."
                if doc.get("objects_held_out")
                else ""
            ),
            "",
            "| set | images | refused (95 % CI) | Mpox likely (95 % CI) |",
            "|---|---|---|---|",
        ]
        for name, r in doc["gate_sets"].items():
            (lo, hi), (llo, lhi) = r["ci95"], r["likely_ci95"]
            lines.append(
                f"| {name} | {r['n']} | {r['refused']:.1%} ({lo:.1%}-{hi:.1%}) | "
                f"{r['mpox_likely']:.1%} ({llo:.1%}-{lhi:.1%}) |"
            )
    if doc.get("lesions_by_tone"):
        lines += [
            "",
            "Lesion photos (whole, every collection pooled) refused, by skin tone (ITA of the "
            f"square; target <= {TARGETS['lesion_refused']:.0%} in every group):",
            "",
            "| skin tone | photos | refused | 95 % CI |",
            "|---|---|---|---|",
        ]
        for group, r in doc["lesions_by_tone"].items():
            lo, hi = r["ci95"]
            lines.append(f"| {group} | {r['n']} | {r['refused']:.1%} | {lo:.1%}-{hi:.1%} |")
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    plt = plots.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(9, 3.8))
    groups = {"non-skin": doc["non_skin_scores"], "demo frames": doc["demo"]["demo"]["scores"]}
    groups |= {k: v["scores"] for k, v in doc["lesions"].items()}
    data = [np.log10(np.maximum(v, 1e-3)) for v in groups.values()]
    ax.boxplot(data, vert=False, tick_labels=list(groups), showfliers=True)
    ax.axvline(np.log10(doc["limit"]), c="k", ls="--", lw=1, label="limit")
    ax.set(xlabel="log10 cannot-judge score (right of the line: no verdict)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    bundle = load_bundle(args.bundle or default_bundle_dir())
    screener = Screener(bundle, bundle.select(args.backend, args.precision), threads=2)
    if screener.ood is None:
        raise BenchError(f"{bundle.root} has no cannot-judge parameters (exported before them)")
    limit = screener.ood.limit
    non_skin = non_skin_images()
    ns_preds = predict(screener, {"non-skin photographs": list(non_skin.values())})
    ns = rates(ns_preds, limit)
    doc = {
        "bundle": bundle.name,
        "file": screener.file.name,
        "limit": limit,
        "min_skin": MIN_SKIN,
        "targets": TARGETS,
        "non_skin": ns,
        "non_skin_scores": ns["non-skin photographs"].pop("scores"),
        "non_skin_judged": [
            n
            for n, p in zip(non_skin, ns_preds["non-skin photographs"], strict=True)
            if p.judgeable
        ],
        "demo": rates(predict(screener, {"demo": list(demo_frames().values())}), limit),
    }
    sets = lesion_sets(args.data, args.stride, not args.no_crops)
    preds = predict(screener, sets)
    doc["lesions"] = rates(preds, limit)
    doc["lesions_by_tone"] = tone_rates(sets, preds)
    doc["objects_held_out"] = "lesion_check" in bundle.manifest.document["ood"]
    gate = gate_sets(args.data, held_out=doc["objects_held_out"])
    doc["gate_sets"] = rates(predict(screener, gate), limit) if gate else {}
    for r in doc["gate_sets"].values():
        r.pop("scores")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    args.out.with_suffix(".md").write_text(markdown(doc))
    plot(doc, args.out.with_suffix(".png"))
    print(markdown(doc))
    return 0
