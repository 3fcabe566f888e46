"""`mpox-train calibrate`: Fit a temperature (folded into the linear head) and choose the
threshold (sensitivity >= 0.95) on the validation photos' kit-framed crops; the checkpoint is
rewritten and its test metrics recomputed at the new threshold."""

from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, default=None, help="default: $MPOX_DATA or ...")
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside CKPT")


def run(args) -> None:
    from train_host.calibrate import calibrate
    from train_host.data import default_data_dir, load_dataset
    from train_host.evaluate import calibrate_and_evaluate
    from train_host.export.exporter import _split_path
    from train_host.grouping import Split

    split = Split.load(_split_path(args.checkpoint, args.split))
    data = load_dataset(args.data or default_data_dir(), "binary")
    val, test = split.part(data, "val"), split.part(data, "test")
    r = calibrate(args.checkpoint, val)
    # reports (metrics.json, predictions, plots) beside the checkpoint, at the new threshold
    calibrate_and_evaluate(args.checkpoint, val, test, args.checkpoint.parent, None, r["threshold"])
    print(
        f"temperature {r['temperature']:.3f}; ECE {r['before']:.3f} -> {r['after']:.3f} on "
        f"{r['n_photos']} validation photos + {r['n_crops']} crops; threshold "
        f"{r['threshold']['value']:.3f} ({r['threshold']['rule']}, val sensitivity "
        f"{r['threshold']['val_sensitivity']:.3f}); reports rewritten in {args.checkpoint.parent}"
    )
