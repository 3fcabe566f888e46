"""`mpox-train export`: Export, quantize on training images, verify every file against PyTorch on
the held-out images, then write manifest.json and card.md. Fails, leaving the bundle as it was,
if any file breaks the gate. The "cannot judge" gate is fitted before, by `mpox-train gate
--checkpoint CKPT` (CKPT.gate.npz): export converts and verifies, it does not train."""

from __future__ import annotations

from pathlib import Path

from train_host import UserError
from train_host.commands import paths_arg


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument(
        "--calib-data",
        type=Path,
        default=None,
        help="the training data folder (default: $MPOX_DATA or ../shared/data/msid)",
    )
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside CKPT")
    p.add_argument("--cv", type=Path, default=None, help="cv.json (default: CKPT dir/cv/)")
    p.add_argument(
        "--calib-count", type=int, default=128, help="training-split calibration images (>= 100)"
    )
    p.add_argument(
        "--calib-share",
        type=int,
        default=8,
        metavar="K",
        help="binary bundles: 1 in K photos of each gate collection calibrate int8 and leave "
        "the gate set (0: MSID only)",
    )
    p.add_argument("--name", default=None, help="bundle name (default: the --out folder name)")
    p.add_argument("--card-notes", type=Path, default=None, help="markdown to append to card.md")
    p.add_argument(
        "--no-fp32",
        dest="ship_fp32",
        action="store_false",
        help="ship only the int8 files (the fp32 ones are still built and gated)",
    )
    p.add_argument(
        "--tflite-headroom",
        type=float,
        default=1.5,
        help="widen the int8 TFLite activation ranges from calibration by this factor (>= 1)",
    )
    paths_arg(
        p,
        "--gate-collection",
        "binary bundles: also gate on every photo of DIR (repeat; default: every folder "
        "beside the data folder)",
        unset_is_none=True,
    )
    p.add_argument(
        "--sign",
        type=Path,
        default=None,
        metavar="KEY",
        help="sign the manifest with this Ed25519 private key (mpox-screen bundle keygen)",
    )
    p.add_argument(
        "--gate",
        type=Path,
        default=None,
        help="the cannot-judge gate (default: CKPT.gate.npz, from mpox-train gate --checkpoint)",
    )
    p.add_argument("--out", type=Path, required=True, help="bundle folder")


def run(args) -> None:
    from train_host.data import default_data_dir
    from train_host.export.exporter import ExportRequest, export_bundle

    if args.calib_count < 100:
        raise UserError("--calib-count must be at least 100")
    if args.calib_share < 0:
        raise UserError("--calib-share must be 0 (MSID only) or more")
    if not 1 <= args.tflite_headroom <= 10:
        raise UserError("--tflite-headroom must be in 1..10")
    if args.card_notes and not args.card_notes.is_file():
        raise UserError(f"--card-notes {args.card_notes}: no such file")
    if args.sign and not args.sign.is_file():
        raise UserError(f"--sign {args.sign}: no such key file")
    m = export_bundle(
        ExportRequest(
            checkpoint=args.checkpoint,
            data=args.calib_data or default_data_dir(),
            out=args.out,
            split=args.split,
            cv=args.cv,
            calib_count=args.calib_count,
            calib_share=args.calib_share,
            name=args.name,
            card_notes=args.card_notes,
            ship_fp32=args.ship_fp32,
            collections=args.gate_collection,
            tflite_headroom=args.tflite_headroom,
            sign=args.sign,
            gate=args.gate,
        )
    )
    for name, f in m["files"].items():
        q = f["metrics"]
        print(
            f"{name}: {f['size'] / 1e6:.2f} MB, AUC {q['auc']:.3f} (n={q['n']}), agreement "
            f"top-1 {q['agreement']:.3f} / decision {q['decision_agreement']:.3f}, CAM r "
            f"{q['cam_pearson']:.3f}"
        )
    print(f"bundle verified: {args.out}/manifest.json, {args.out}/card.md")
