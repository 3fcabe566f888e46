"""`mpox-train cv`: Train k models on grouped, stratified folds; report mean +- sd and pooled
out-of- fold AUC."""

from __future__ import annotations

from pathlib import Path

from train_host import UserError
from train_host.commands import add_data_args, add_train_args, load_data, paths_arg, train_config


def add_arguments(p) -> None:
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument(
        "--only-fold",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="run only fold N (repeat; e.g. one process per core); the summary is written "
        "when every fold is done",
    )
    paths_arg(
        p,
        "--collection",
        "with the summary, the collection-shift protocol under CV on these collections "
        "(repeat): each fold's model on its fold, kit-framed, and on every collection",
    )
    p.add_argument("--out", type=Path, required=True)


def run(args) -> None:
    from train_host.cv import cross_validate
    from train_host.grouping import near_duplicate_groups

    cfg, data = train_config(args), load_data(args)
    only = set(args.only_fold or [])
    if any(not 1 <= n <= args.folds for n in only):
        raise UserError(f"--only-fold takes fold numbers 1..{args.folds}")
    groups = near_duplicate_groups(data.images)
    s = cross_validate(
        cfg, data, groups, args.out, args.folds, args.val_fraction, args.resume, only
    )
    if s is None:
        print(f"folds done so far are in {args.out}; the summary comes when all are done")
    else:
        print(
            f"grouped {args.folds}-fold AUC {s['auc_mean']:.3f} +- {s['auc_sd']:.3f}, pooled "
            f"{s['pooled']['auc']:.3f}; report: {args.out}/cv_report.md"
        )
        if args.collection:
            _cv_collections(args)


def _cv_collections(args) -> None:
    from train_host import collection_report
    from train_host import collection_shift as cs
    from train_host.data import default_data_dir, load_dataset

    msid = load_dataset(args.data or default_data_dir(), "binary")
    sets = {c.name: cs.load_collection(c) for c in args.collection}
    r = cs.cv_protocol(args.out, msid, sets)
    collection_report.write(args.out, [r], list(sets))
    spec = ", ".join(f"{n} {c['as_is']['specificity']:.2f}" for n, c in r["collections"].items())
    print(
        f"per collection (mean over folds): kit-framing AUC {r['kit_framing']['auc']:.3f}; "
        f"specificity at the threshold: {spec}; {args.out}/collection_shift.md"
    )
