"""`mpox-train calibrate`: Fit a temperature (folded into the linear head) and choose the
threshold (sensitivity >= 0.95) on the validation photos' kit-framed crops, into a new run folder
(default: the checkpoint's folder + `-cal`) with its reports at the new threshold. The checkpoint
it reads is never rewritten, and a calibrated one is refused: a second temperature on top of the
first would be lost from the record.

With `--site DIR --bundle B --out NEW`: one site's threshold from its lab-confirmed photos
(`mpox-screen cases export --training`), scored by the bundle's int8 ONNX file as the kit scores
them, written as a new bundle version (train_host/site_calibration.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

BESIDE = ("split.json", "config.json", "history.jsonl")  # what the new run folder keeps


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--site", type=Path, default=None, help="a site's training export")
    p.add_argument("--bundle", type=Path, default=None, help="the bundle the site's kit runs")
    p.add_argument("--data", type=Path, default=None, help="default: $MPOX_DATA or ...")
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside CKPT")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="new run folder (default: CKPT's folder + -cal); with --site: the new bundle folder",
    )


def out_folder(checkpoint: Path, out: Path | None) -> Path:
    from train_host import UserError

    folder = out or checkpoint.parent.with_name(checkpoint.parent.name + "-cal")
    if folder.resolve() == checkpoint.parent.resolve():
        raise UserError(f"--out {folder}: the checkpoint's own folder; calibrate into a new one")
    if (folder / checkpoint.name).exists():
        raise UserError(f"{folder / checkpoint.name} exists: remove it or pass another --out")
    return folder


def run(args) -> None:
    from train_host import UserError

    if args.site or args.bundle:
        if not (args.site and args.bundle and args.out) or args.checkpoint:
            raise UserError("a site calibration takes --site, --bundle and --out (no --checkpoint)")
        return run_site(args)
    if args.checkpoint is None:
        raise UserError("--checkpoint CKPT, or --site DIR --bundle B --out NEW")
    from train_host.calibrate import calibrate
    from train_host.data import default_data_dir, load_dataset
    from train_host.evaluate import calibrate_and_evaluate
    from train_host.export.exporter import _split_path
    from train_host.grouping import Split

    split_path = _split_path(args.checkpoint, args.split)
    out = out_folder(args.checkpoint, args.out)
    data = load_dataset(args.data or default_data_dir(), "binary")
    split = Split.load(split_path)
    val, test = split.part(data, "val"), split.part(data, "test")
    out.mkdir(parents=True, exist_ok=True)
    calibrated = out / args.checkpoint.name
    r = calibrate(args.checkpoint, val, calibrated)
    shutil.copy(split_path, out / "split.json")
    for name in BESIDE[1:]:
        if (args.checkpoint.parent / name).is_file():
            shutil.copy(args.checkpoint.parent / name, out / name)
    # reports (metrics.json, predictions, plots) beside the new checkpoint, at the new threshold
    calibrate_and_evaluate(calibrated, val, test, out, None, r["threshold"])
    print(
        f"temperature {r['temperature']:.3f}; ECE {r['before']:.3f} -> {r['after']:.3f} on "
        f"{r['n_photos']} validation photos + {r['n_crops']} crops; threshold "
        f"{r['threshold']['value']:.3f} ({r['threshold']['rule']}, val sensitivity "
        f"{r['threshold']['val_sensitivity']:.3f}); {calibrated} and its reports written"
    )


def run_site(args) -> None:
    from train_host.site_calibration import calibrate_site

    r = calibrate_site(args.site, args.bundle, args.out)
    for when in ("before", "after"):
        sens, spec = r[when]["sensitivity"], r[when]["specificity"]
        print(
            f"{when}: threshold {r['threshold_before' if when == 'before' else 'threshold']:.3f}, "
            f"sensitivity {sens['value']:.2f} ({sens['low']:.2f}-{sens['high']:.2f}), specificity "
            f"{spec['value']:.2f} ({spec['low']:.2f}-{spec['high']:.2f})"
        )
    print(
        f"{r['photos']} photos of site {r['site']} ({r['positives']} positive, {r['negatives']} "
        f"negative; {r['cannot_judge']} refused as cannot judge); measured on {r['measured_on']}; "
        f"new bundle {args.out} (unsigned: mpox-screen bundle sign)"
    )
