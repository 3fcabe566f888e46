"""`mpox-train`: fit, cv, evaluate, export, shift-test, explain and models. User errors print one
line and exit 2."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path

from device import KitError
from train_host import UserError, __version__

log = logging.getLogger("mpox-train")
# what a device-only install lacks: a clear hint instead of a chained traceback
TRAIN_MODULES = {"torch", "torchvision", "torchmetrics", "sklearn", "tqdm", "PIL", "captum"}


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of class folders (default: $MPOX_DATA or ../shared/data/msid)",
    )
    p.add_argument(
        "--task",
        choices=["binary", "multiclass"],
        default="binary",
        help="binary: mpox vs all other folders; multiclass: one class per folder",
    )
    p.add_argument("--limit-per-class", type=int, default=None, help="use at most N images/class")


def _paths_arg(p, flag: str, help: str, metavar: str = "DIR", unset_is_none: bool = False) -> None:
    """A repeatable folder option (`--collection A --collection B`): a list, [] when not given,
    or None with `unset_is_none` (the command then picks its own default)."""
    default = None if unset_is_none else []
    p.add_argument(flag, type=Path, action="append", default=default, metavar=metavar, help=help)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and training")
    g.add_argument(
        "--model", default="micrompoxnet", help="registered model (see `mpox-train models`)"
    )
    g.add_argument("--input-size", type=int, default=None, help="input side in px (model default)")
    g.add_argument("--width", type=float, default=None, help="micrompoxnet channel multiplier")
    g.add_argument("--dropout", type=float, default=None, help="dropout before the linear head")
    g.add_argument("--weights", default=None, help="local backbone state dict (no downloads)")
    g.add_argument("--epochs", type=int, default=60)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--optimizer", choices=["adamw", "sgd", "rmsprop"], default="adamw")
    g.add_argument("--lr", type=float, default=2e-3)
    g.add_argument("--weight-decay", type=float, default=0.05)
    g.add_argument("--warmup-epochs", type=int, default=3)
    g.add_argument("--label-smoothing", type=float, default=0.1)
    g.add_argument(
        "--balance",
        choices=["weight", "sampler", "none"],
        default="weight",
        help="class-weighted loss, balanced sampling, or neither",
    )
    g.add_argument("--augment", type=float, default=1.0, help="augmentation strength (0 = none)")
    g.add_argument("--clahe", action="store_true", help="add random CLAHE to the augmentation")
    g.add_argument(
        "--camera-aug",
        type=float,
        default=0.0,
        help="camera/clinic augmentation strength: white balance, exposure, JPEG, blur, zoom-out",
    )
    g.add_argument(
        "--colour-constancy",
        choices=["none", "shades_of_grey"],
        default="none",
        help="colour-constancy preprocessing (goes into the bundle; the device applies it too)",
    )
    g.add_argument(
        "--lesion-crop",
        type=float,
        default=0.0,
        help="probability of a kit-framing crop: a tight square around a lesion-like spot",
    )
    g.add_argument(
        "--text-paste",
        type=float,
        default=0.0,
        help="probability of pasted caption/watermark text on any class (text carries no label)",
    )
    g.add_argument(
        "--tone-aug",
        type=float,
        default=0.0,
        help="probability of a skin-tone change (lighter/darker, tint) on any class",
    )
    g.add_argument(
        "--extra-negatives",
        type=str,
        action="append",
        default=[],
        metavar="DIR",
        help="a negatives-only collection added to the training part only (repeat); the "
        "collection-shift protocol then scores the collections left out",
    )
    g.add_argument(
        "--linear-probe",
        type=int,
        default=0,
        metavar="VIEWS",
        help="LP-FT: fit the head on frozen features of VIEWS augmented passes, then fine-tune",
    )
    g.add_argument(
        "--backbone-lr", type=float, default=1.0, help="backbone learning rate, a fraction of --lr"
    )
    g.add_argument(
        "--freeze-bn", action="store_true", help="keep the pretrained BatchNorm statistics"
    )
    g.add_argument("--patience", type=int, default=15, help="early stop after N epochs w/o gain")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--num-workers", type=int, default=1, help="data-loader worker processes")
    g.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="training arithmetic; auto = bf16 autocast where the CPU/GPU has it",
    )
    g.add_argument("--val-fraction", type=float, default=0.15)
    g.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    k = p.add_argument_group("distillation (with --teacher)")
    k.add_argument("--teacher", default=None, help="teacher checkpoint: distil into --model")
    k.add_argument("--kd-temperature", type=float, default=2.0)
    k.add_argument("--kd-weight", type=float, default=1.0, help="KL to the teacher's output")
    k.add_argument(
        "--kd-ce-weight", type=float, default=0.0, help="cross-entropy to (mixed) labels"
    )
    k.add_argument("--kd-attention-weight", type=float, default=1.0, help="attention-map transfer")
    k.add_argument("--kd-mix", type=float, default=1.0, help="share of mixup/cutmix batches")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpox-train",
        description="Train and evaluate Mpox screening models on folders of labelled photos.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "fit",
        help="train one model on a grouped train/val/test split",
        description="Train one model. The split keeps pHash near-duplicates on one "
        "side; the threshold is chosen on val; the report is on test.",
    )
    _add_data_args(p)
    _add_train_args(p)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--split", type=Path, default=None, help="reuse a split.json from another run")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, reports)")

    p = sub.add_parser(
        "cv",
        help="grouped stratified k-fold cross-validation",
        description="Train k models on grouped, stratified folds; report mean +- sd "
        "and pooled out-of-fold AUC.",
    )
    _add_data_args(p)
    _add_train_args(p)
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
    _paths_arg(
        p,
        "--collection",
        "with the summary, the collection-shift protocol under CV on these collections "
        "(repeat): each fold's model on its fold, kit-framed, and on every collection",
    )
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a labelled folder",
        description="Evaluate at the checkpoint's validation-chosen threshold.",
    )
    p.add_argument("--checkpoint", type=Path, required=True)
    _add_data_args(p)
    p.add_argument("--split", type=Path, default=None, help="only the images of one split part")
    p.add_argument("--subset", choices=["train", "val", "test"], default="test")
    _paths_arg(
        p,
        "--collection",
        "also score this collection (repeat; negatives-only folders allowed): per-"
        "collection and pooled AUC, sensitivity, specificity at the threshold, with 95 %% CIs",
    )
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser(
        "collection-shift",
        help="the collection-shift protocol: kit framing and other collections, per model",
        description="Score MSID held-out photos as they are and kit-framed (tight crops around "
        "lesion-like spots), and every other collection at each model's threshold; write "
        "collection_shift.json, .md (rows ordered by the selection rule) and .png.",
    )
    p.add_argument("--checkpoint", type=Path, action="append", default=[], help="repeat")
    p.add_argument("--bundle", type=Path, action="append", default=[], help="repeat (int8 ONNX)")
    _paths_arg(
        p,
        "--cv",
        "a `mpox-train cv` folder: each fold's model on its held-out fold; mean and "
        "t-interval over folds (repeat)",
        metavar="CV_DIR",
    )
    p.add_argument("--data", type=Path, default=None, help="MSID (default: $MPOX_DATA or ...)")
    _paths_arg(
        p,
        "--collection",
        "other collections (default: every folder beside --data)",
        unset_is_none=True,
    )
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside each")
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser(
        "shift-test",
        help="AUC under strong synthetic camera shifts, for one or more checkpoints",
        description="Score held-out images (the checkpoint split's val + test) clean and under "
        "fixed camera and collection shifts; write shift_test.json and shift_test.png.",
    )
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

    p = sub.add_parser(
        "export",
        help="write a verified ONNX + TFLite (fp32, int8) bundle from a checkpoint",
        description="Export, quantize on training images, verify every file against PyTorch "
        "on the held-out images, then write manifest.json and card.md. Fails, leaving the "
        "bundle as it was, if any file breaks the gate.",
    )
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument(
        "--calib-data",
        type=Path,
        default=None,
        help="the training data folder (default: $MPOX_DATA or ../shared/data/msid)",
    )
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside CKPT")
    p.add_argument("--cv", type=Path, default=None, help="cv.json (default: CKPT dir/cv/)")
    p.add_argument("--calib-count", type=int, default=128, help="calibration images (>= 100)")
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
    _paths_arg(
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
    p.add_argument("--out", type=Path, required=True, help="bundle folder")

    p = sub.add_parser(
        "explain",
        help="Grad-CAM, Integrated Gradients and LIME panels, deletion scores, bundle agreement",
        description="One PNG panel per image (captum Grad-CAM at the last and the 1/8-size "
        "stage, Integrated Gradients, LIME on SLIC superpixels), an index page sorted by "
        "confidence (misclassified first when class folders give labels), deletion curves per "
        "method against random removal and, with --bundle, the Pearson agreement of every "
        "bundle file's in-graph CAM with captum Grad-CAM (explain.json, deletion.png).",
    )
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

    p = sub.add_parser(
        "calibrate",
        help="temperature scaling and the threshold on validation photos and their kit crops",
        description="Fit a temperature (folded into the linear head) and choose the threshold "
        "(sensitivity >= 0.95) on the validation photos' kit-framed crops; the checkpoint is "
        "rewritten and its test metrics recomputed at the new threshold.",
    )
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, default=None, help="default: $MPOX_DATA or ...")
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside CKPT")

    p = sub.add_parser("models", help="list registered models with parameters and MACs")
    p.add_argument("--num-classes", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _load(args):
    from train_host.data import default_data_dir, load_dataset

    root = args.data or default_data_dir()
    if args.limit_per_class is not None and args.limit_per_class < 1:
        raise UserError("--limit-per-class must be at least 1")
    data = load_dataset(root, args.task, args.limit_per_class)
    log.info("loaded %d images from %s (%s: %s)", len(data), root, data.task, data.class_names)
    return data


def _config(args):
    from train_host.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    cfg.validate()
    return cfg


def cmd_fit(args) -> None:
    from train_host import distributed
    from train_host.evaluate import calibrate_and_evaluate
    from train_host.grouping import Split, make_split, near_duplicate_groups
    from train_host.train import Trainer

    cfg, data = _config(args), _load(args)
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


def cmd_cv(args) -> None:
    from train_host.cv import cross_validate
    from train_host.grouping import near_duplicate_groups

    cfg, data = _config(args), _load(args)
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


def cmd_evaluate(args) -> None:
    from train_host.evaluate import evaluate_checkpoint
    from train_host.grouping import Split

    data = _load(args)
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


def cmd_calibrate(args) -> None:
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


def cmd_collection_shift(args) -> None:
    from train_host import collection_report
    from train_host import collection_shift as cs
    from train_host.data import default_data_dir, load_dataset
    from train_host.export.exporter import held_out

    if not args.checkpoint and not args.bundle and not args.cv:
        raise UserError("collection-shift takes --checkpoint CKPT, --bundle DIR or --cv DIR")
    root = args.data or default_data_dir()
    msid = load_dataset(root, "binary")
    names = args.collection or cs.other_collections(root)
    collections = {c.name: cs.load_collection(c) for c in names}
    results = []
    for path, scorer in [(p, cs.checkpoint_scorer(p)) for p in args.checkpoint] + [
        (p / "model.int8.onnx", cs.bundle_scorer(p)) for p in args.bundle
    ]:
        results.append(cs.run_protocol(scorer, held_out(msid, path, args.split), collections))
    results += [cs.cv_protocol(d, msid, collections) for d in args.cv]
    for r in results:
        spec = ", ".join(
            f"{n} {c['as_is']['specificity']:.2f}" for n, c in r["collections"].items()
        )
        print(
            f"{r['model']}: kit-framing AUC {r['kit_framing']['auc']:.3f}; specificity at the "
            f"threshold: {spec}; MSID held-out AUC {r['msid_heldout']['auc']:.3f}"
        )
    collection_report.write(args.out, results, list(collections))
    print(f"wrote {args.out}/collection_shift.md, .json and .png")


def cmd_models(args) -> None:
    from train_host.profile import profile_all

    rows = profile_all(args.num_classes)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'model':<20} {'input':>5} {'params (M)':>10} {'MACs (M)':>9}  pretrained")
    for r in rows:
        print(
            f"{r['name']:<20} {r['input_size']:>5} {r['params'] / 1e6:>10.3f} "
            f"{r['macs'] / 1e6:>9.1f}  {r['pretrained']}"
        )


def cmd_shift_test(args) -> None:
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


def cmd_export(args) -> None:
    from train_host.data import default_data_dir
    from train_host.export.exporter import ExportRequest, export_bundle

    if args.calib_count < 100:
        raise UserError("--calib-count must be at least 100")
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
            name=args.name,
            card_notes=args.card_notes,
            ship_fp32=args.ship_fp32,
            collections=args.gate_collection,
            tflite_headroom=args.tflite_headroom,
            sign=args.sign,
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


def cmd_explain(args) -> None:
    from train_host.explain import ExplainRequest, explain

    names = {f.name for f in fields(ExplainRequest)}
    s = explain(ExplainRequest(**{k: v for k, v in vars(args).items() if k in names}))
    for name, d in (s["deletion"] or {}).items():
        wins = f", beats random on {d['beats_random']:.0%}" if "beats_random" in d else ""
        print(f"deletion AUC {name}: {d['auc_mean']:.3f}{wins}")
    for name, a in (s.get("agreement") or {}).items():
        print(f"{name}: CAM Pearson with captum Grad-CAM {a['pearson_mean']:.3f}")
    print(f"{s['n_images']} panel(s): {args.out}/index.md, {args.out}/explain.json")


COMMANDS = {
    "fit": cmd_fit,
    "cv": cmd_cv,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "shift-test": cmd_shift_test,
    "collection-shift": cmd_collection_shift,
    "calibrate": cmd_calibrate,
    "models": cmd_models,
    "explain": cmd_explain,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("mpox-train", "train_host", "device"):  # not the exporters' chatty INFO
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        COMMANDS[args.command](args)
    except KitError as exc:  # UserError, and DeviceError from the device code the gate runs
        print(f"mpox-train: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name not in TRAIN_MODULES:
            raise
        print(
            f"mpox-train: error: {exc.name} is not installed: install the train extra "
            '(pip install -e ".[train,export]")',
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("mpox-train: interrupted", file=sys.stderr)
        return 130
    finally:
        distributed = sys.modules.get("train_host.distributed")  # only if a command used it
        if distributed is not None:
            distributed.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
