"""`mpox-train collection-shift`: Score MSID held-out photos as they are and kit-framed (tight
crops around lesion-like spots), and every other collection at each model's threshold; write
collection_shift.json, .md (rows ordered by the selection rule) and .png."""

from __future__ import annotations

from pathlib import Path

from train_host import UserError
from train_host.commands import paths_arg


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", type=Path, action="append", default=[], help="repeat")
    p.add_argument("--bundle", type=Path, action="append", default=[], help="repeat (int8 ONNX)")
    p.add_argument(
        "--ensemble",
        type=Path,
        action="append",
        default=[],
        metavar="CKPT",
        help="checkpoints scored as one model, their mean P(mpox) (repeat; at least 2)",
    )
    paths_arg(
        p,
        "--cv",
        "a `mpox-train cv` folder: each fold's model on its held-out fold; mean and "
        "t-interval over folds (repeat)",
        metavar="CV_DIR",
    )
    p.add_argument("--data", type=Path, default=None, help="MSID (default: $MPOX_DATA or ...)")
    paths_arg(
        p,
        "--collection",
        "other collections (default: every folder beside --data)",
        unset_is_none=True,
    )
    paths_arg(
        p,
        "--include",
        "rows of an earlier collection_shift.json to put in this table (same collections); a "
        "model scored again replaces its row (repeat)",
        metavar="JSON",
    )
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside each")
    p.add_argument("--out", type=Path, required=True)


def run(args) -> None:
    from train_host import collection_report
    from train_host import collection_shift as cs
    from train_host.data import default_data_dir, load_dataset
    from train_host.export.exporter import held_out, validation

    if not (args.checkpoint or args.bundle or args.cv or args.ensemble or args.include):
        raise UserError(
            "collection-shift takes --checkpoint CKPT, --bundle DIR, --cv DIR, --ensemble CKPT "
            "or --include JSON"
        )
    if len(args.ensemble) == 1:
        raise UserError("--ensemble takes at least two checkpoints (one: use --checkpoint)")
    root = args.data or default_data_dir()
    msid = load_dataset(root, "binary")
    names = args.collection or cs.other_collections(root)
    earlier = collection_report.earlier_rows(args.include, [c.name for c in names])
    collections = {c.name: cs.load_collection(c) for c in names}
    results = []
    for path, scorer in [(p, cs.checkpoint_scorer(p)) for p in args.checkpoint] + [
        (p / "model.int8.onnx", cs.bundle_scorer(p)) for p in args.bundle
    ]:
        results.append(cs.run_protocol(scorer, held_out(msid, path, args.split), collections))
    if args.ensemble:
        first = args.ensemble[0]
        scorer = cs.ensemble_scorer(args.ensemble, validation(msid, first, args.split))
        results.append(cs.run_protocol(scorer, held_out(msid, first, args.split), collections))
    results += [cs.cv_protocol(d, msid, collections) for d in args.cv]
    for r in results:
        spec = ", ".join(
            f"{n} {c['as_is']['specificity']:.2f}" for n, c in r["collections"].items()
        )
        print(
            f"{r['model']}: kit-framing AUC {r['kit_framing']['auc']:.3f}; specificity at the "
            f"threshold: {spec}; MSID held-out AUC {r['msid_heldout']['auc']:.3f}"
        )
    collection_report.write(args.out, collection_report.merged(earlier, results), list(collections))
    print(f"wrote {args.out}/collection_shift.md, .json and .png")
