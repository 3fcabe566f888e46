"""`mpox-train evaluate`: Evaluate at the checkpoint's validation-chosen threshold."""

from __future__ import annotations

from pathlib import Path

from train_host.commands import add_data_args, load_data, paths_arg


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", type=Path, required=True)
    add_data_args(p)
    p.add_argument("--split", type=Path, default=None, help="only the images of one split part")
    p.add_argument("--subset", choices=["train", "val", "test"], default="test")
    paths_arg(
        p,
        "--collection",
        "also score this collection (repeat; negatives-only folders allowed): per-"
        "collection and pooled AUC, sensitivity, specificity at the threshold, with 95 %% CIs",
    )
    p.add_argument("--out", type=Path, required=True)


def run(args) -> None:
    from train_host.evaluate import evaluate_checkpoint
    from train_host.grouping import Split

    data = load_data(args)
    if args.split:
        data = Split.load(args.split).part(data, args.subset)
    res = evaluate_checkpoint(args.checkpoint, data, args.out)
    s = res["folder"]["screening"]
    print(
        f"AUC {s['auc']:.3f} sensitivity {s['sensitivity']:.3f} specificity "
        f"{s['specificity']:.3f} on {s['n']} images; report: {args.out}/report.md"
    )
    if args.collection:
        _evaluate_collections(args, data)


def _evaluate_collections(args, data) -> None:
    from train_host import collection_report
    from train_host import collection_shift as cs

    scorer = cs.checkpoint_scorer(args.checkpoint)
    sets = {data.root.name: data, **{c.name: cs.load_collection(c) for c in args.collection}}
    res = cs.per_collection(scorer, sets)
    collection_report.write_per_collection(args.out, scorer.name, res)
    for name, m in res.items():
        print(
            f"{name}: n {m['n']}, AUC {m['auc']:.3f}, sensitivity {m['sensitivity']:.3f}, "
            f"specificity {m['specificity']:.3f}, flagged {m['flagged']:.0%}"
        )
    print(f"per collection: {args.out}/collections.md")
