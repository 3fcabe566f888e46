"""`mpox-train explain`: One PNG panel per image (captum Grad-CAM at the last and the 1/8-size
stage, Integrated Gradients, LIME on SLIC superpixels), an index page sorted by confidence
(misclassified first when class folders give labels), deletion curves per method against random
removal and, with --bundle, the Pearson agreement of every bundle file's in-graph CAM with captum
Grad-CAM (explain.json, deletion.png)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="images or folders")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: BUNDLE/checkpoint.pt")
    p.add_argument("--bundle", type=Path, default=None, help="bundle: its checkpoint and CAMs")
    p.add_argument("--methods", default="gradcam,ig,lime", help="comma list of gradcam,ig,lime")
    p.add_argument(
        "--layer",
        dest="layers",
        action="append",
        default=None,
        help="Grad-CAM layer (repeat; default: backbone and the 1/8-size stage)",
    )
    p.add_argument("--ig-steps", type=int, default=32, help="Integrated Gradients steps")
    p.add_argument("--lime-samples", type=int, default=150, help="LIME perturbed samples")
    p.add_argument("--superpixels", type=int, default=50, help="SLIC superpixels for LIME")
    p.add_argument("--deletion-grid", type=int, default=8, help="deletion patches per side")
    p.add_argument("--deletion-steps", type=int, default=16, help="points on a deletion curve")
    p.add_argument("--deletion-fill", choices=["blur", "mean"], default="blur")
    p.add_argument("--random-orders", type=int, default=3, help="random-removal baselines")
    p.add_argument("--no-deletion", dest="deletion", action="store_false")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output folder")


def run(args) -> None:
    from train_host.explain import ExplainRequest, explain

    names = {f.name for f in fields(ExplainRequest)}
    s = explain(ExplainRequest(**{k: v for k, v in vars(args).items() if k in names}))
    for name, d in (s["deletion"] or {}).items():
        wins = f", beats random on {d['beats_random']:.0%}" if "beats_random" in d else ""
        print(f"deletion AUC {name}: {d['auc_mean']:.3f}{wins}")
    for name, a in (s.get("agreement") or {}).items():
        print(f"{name}: CAM Pearson with captum Grad-CAM {a['pearson_mean']:.3f}")
    print(f"{s['n_images']} panel(s): {args.out}/index.md, {args.out}/explain.json")
