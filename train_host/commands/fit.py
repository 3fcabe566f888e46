"""`mpox-train fit`: Train one model. The split keeps pHash near-duplicates on one side; the
threshold is chosen on val; the report is on test."""

from __future__ import annotations

from pathlib import Path

from train_host import UserError
from train_host.commands import add_data_args, add_train_args, load_data, train_config


def add_arguments(p) -> None:
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--split", type=Path, default=None, help="reuse a split.json from another run")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, reports)")


def run(args) -> None:
    from train_host import distributed
    from train_host.evaluate import calibrate_and_evaluate
    from train_host.grouping import Split, make_split, near_duplicate_groups
    from train_host.train import Trainer

    cfg, data = train_config(args), load_data(args)
    if args.split:
        split = Split.load(args.split)
        if split.files != data.relpaths():
            raise UserError(f"{args.split} lists other files than {data.root}")
    else:
        groups = near_duplicate_groups(data.images)
        split = make_split(
            data.relpaths(), data.labels, groups, cfg.seed, args.val_fraction, args.test_fraction
        )
    trainer = Trainer(cfg, data, split, args.out, resume=args.resume)
    best = trainer.run()
    if distributed.setup().main:
        res = calibrate_and_evaluate(
            best, data.subset(split.val), data.subset(split.test), args.out, trainer.history
        )
        name = "test" if "test" in res else "val"
        s = res[name]["screening"]
        print(
            f"{name}: AUC {s['auc']:.3f} sensitivity {s['sensitivity']:.3f} specificity "
            f"{s['specificity']:.3f} at threshold {s['threshold']:.3f}; "
            f"report: {args.out}/report.md"
        )
