"""`mpox-train shift-test`: Score held-out images (the checkpoint split's val + test) clean and
under fixed camera and collection shifts; write shift_test.json and shift_test.png."""

from __future__ import annotations

from pathlib import Path

from train_host import UserError


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", type=Path, action="append", help="repeat to compare")
    p.add_argument(
        "--cv",
        type=Path,
        action="append",
        metavar="CV_DIR",
        help="a `mpox-train cv` folder: each fold's model on its held-out fold (repeat to "
        "compare on the same folds; the first is the baseline)",
    )
    p.add_argument("--data", type=Path, default=None, help="default: $MPOX_DATA or ../shared/...")
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside CKPT")
    p.add_argument("--out", type=Path, required=True)


def run(args) -> None:
    if bool(args.checkpoint) == bool(args.cv):
        raise UserError("shift-test takes --checkpoint CKPT ... or --cv CV_DIR ..., one kind")
    if args.cv:
        return _shift_test_cv(args)
    from train_host.checkpoint import load_model
    from train_host.data import default_data_dir, load_dataset
    from train_host.export.exporter import held_out
    from train_host.shift import shift_test, write

    results = {}
    for ckpt_path in args.checkpoint:
        model, ckpt = load_model(ckpt_path)
        data = load_dataset(args.data or default_data_dir(), ckpt["task"])
        r = shift_test(model, ckpt, held_out(data, ckpt_path, args.split))
        name = f"{ckpt_path.parent.name}/{ckpt_path.stem}"
        results[name] = r
        print(
            f"{name}: clean AUC {r['auc']['clean']:.3f}, mean shifted {r['mean_shift_auc']:.3f}, "
            f"worst {r['worst_shift_auc']:.3f} (n={r['n']})"
        )
    write(args.out, results)
    print(f"wrote {args.out}/shift_test.json and shift_test.png")


def _shift_test_cv(args) -> None:
    from train_host.data import default_data_dir
    from train_host.shift_cv import compare, cv_shift_test, write

    runs = {}
    for cv_dir in args.cv:
        r = runs[cv_dir.name] = cv_shift_test(cv_dir, args.data or default_data_dir())
        print(
            f"{cv_dir.name}: folds {','.join(map(str, r['folds']))}, clean AUC "
            f"{r['auc']['clean']:.3f}, mean shifted {r['mean_shift_auc']:.3f} +- "
            f"{r['mean_shift_auc_sd']:.3f} (n={r['n']})"
        )
    for name, p in compare(runs).items():
        print(
            f"{name} vs {args.cv[0].name}: shift {p['mean_shift_auc']:+.3f} "
            f"({p['folds_up']} of {len(p['folds'])} folds up), clean {p['clean_auc']:+.3f}"
        )
    write(args.out, runs)
    print(f"wrote {args.out}/shift_cv.json, shift_cv.md and shift_cv.png")
