"""`mpox-train gate`: the "cannot judge" gate of every collection (train_host/ood.py), fitted on
the lesion photos of MSID's training part and of every look-alike collection (whole, kit-framed
crops, darker-skinned copies), with the lesion check learned against half of `nonskin/objects`
(ood version 3; `--no-lesion-check`: distance only), and judged leaving each collection out
(report: JSON, Markdown, PNG; train_host/lesion_gate.py).

`--checkpoint CKPT`: before export, on the checkpoint's fp32 graph; stores the feature scale and
the score beside it (CKPT.gate.npz, or --out FILE), which `mpox-train export` puts in the bundle.
`--bundle B --out NEW`: an exported bundle's gate refitted on its own int8 ONNX features, written
as a new bundle version with the model files unchanged and each file's agreement re-measured."""

from __future__ import annotations

from pathlib import Path

from train_host.commands import paths_arg

REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "ood_loco"


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", type=Path, default=None, help="fit before export")
    p.add_argument("--bundle", type=Path, default=None, help="refit an exported bundle")
    p.add_argument("--data", type=Path, default=None, help="MSID (default: $MPOX_DATA or ...)")
    p.add_argument("--split", type=Path, default=None, help="default: split.json beside CKPT")
    paths_arg(
        p,
        "--collection",
        "look-alike collection DIR (repeat; default: every folder beside the data folder)",
        unset_is_none=True,
    )
    p.add_argument(
        "--stride",
        type=int,
        default=1,
        help="every Nth photo the gate is fitted on, and, with --checkpoint, scaled by (1 = all)",
    )
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="OUT.json/.md/.png (default: CKPT's folder/ood_loco, or benchmarks/results/ood_loco)",
    )
    p.add_argument("--no-report", action="store_true", help="fit only (no leave-one-out runs)")
    p.add_argument(
        "--no-lesion-check",
        action="store_true",
        help="--checkpoint: distance only (ood version 2), without the ImageNet lesion check",
    )
    p.add_argument("--out", type=Path, default=None, help="CKPT.gate.npz, or the new bundle")


def run(args) -> None:
    from train_host import UserError

    if (args.checkpoint is None) == (args.bundle is None):
        raise UserError("give --checkpoint CKPT (before export) or --bundle B --out NEW")
    if args.stride < 1:
        raise UserError("--stride must be at least 1")
    (run_checkpoint if args.checkpoint else run_bundle)(args)


def _fit(args, reader, current, sets, default_report: Path):
    """The gate fitted on `sets` (`load_sets`) and, unless --no-report, judged and reported."""
    from train_host import ood
    from train_host.data import default_data_dir
    from train_host.gate_report import write
    from train_host.lesion_gate import judge, object_features, object_photos, reference_photos

    data = args.data or default_data_dir()
    if args.no_report:
        every = reference_photos(data, sets, args.stride)
        objects = object_features(reader, object_photos(data)[0]) if reader.lesion_check else None
        return ood.fit(ood.reference(reader.features, every), reader.sizes, objects), None
    fit = judge(reader, current, data, sets, args.stride)
    report = args.report or default_report
    write(fit.report, report)
    for r in fit.report["rows"]:
        left = r.get("left_out_refused", {}).get("whole")
        objects = r.get("objects", {}).get("not_likely")
        print(
            f"{r['fit']:>16} | left out {r['left_out'] or '-':>10}: refused "
            f"{'-' if left is None else format(left['value'], '.1%')}; objects refused or "
            f"unlikely {'-' if objects is None else format(objects['value'], '.1%')}"
        )
    print(f"report: {report.with_suffix('.md')}")
    return fit.model, fit


def run_checkpoint(args) -> None:
    from device.core.bundle import sha256
    from train_host import ood
    from train_host.checkpoint import load_model, preprocess_spec
    from train_host.data import default_data_dir
    from train_host.export.exporter import _split_path, kit_crops
    from train_host.gate_readers import GraphReader
    from train_host.lesion_gate import load_sets
    from train_host.models.camgraph import wrap
    from train_host.models.lesion_check import LesionCheckBranch

    out = args.out or ood.gate_path(args.checkpoint)
    model, ckpt = load_model(args.checkpoint)
    spec = preprocess_spec(ckpt)
    sets = load_sets(
        args.data or default_data_dir(), _split_path(args.checkpoint, args.split), args.collection
    )
    train = sets[0].images[:: args.stride]
    lesion = None if args.no_lesion_check else LesionCheckBranch(spec.mean, spec.std)
    net = wrap(model, spec.size, ood=True, lesion=lesion)
    mean, std = ood.feature_scale(net, train + kit_crops(train), spec)
    ood.apply_scale(net, mean, std)
    reader = GraphReader(args.checkpoint.parent.name, net, spec, ckpt)
    fitted, _ = _fit(args, reader, None, sets, args.checkpoint.parent / "ood_loco")
    ood.Gate(mean, std, fitted, sha256(args.checkpoint)).save(out)
    print(f"cannot-judge gate {out} (limit {fitted.limit:.3f}): `mpox-train export` ships it")


def run_bundle(args) -> None:
    from device.core.bundle import load_bundle
    from train_host import UserError, ood
    from train_host.data import default_data_dir
    from train_host.derive import derive, new_folder
    from train_host.export.manifest import REFUSED_ON, ood_refused
    from train_host.gate_readers import BundleReader
    from train_host.lesion_gate import file_agreement, load_sets

    if args.out is None or args.no_report:
        raise UserError("a bundle's gate is refitted into a new bundle: --out NEW, with its report")
    new_folder(args.out)
    bundle = load_bundle(args.bundle)
    if bundle.manifest.ood is None:
        raise UserError(f"{args.bundle} has no cannot-judge gate to refit (exported before it)")
    sets = load_sets(args.data or default_data_dir(), bundle.root / "split.json", args.collection)
    _, fit = _fit(args, BundleReader(bundle), bundle.ood(), sets, REPORT)
    model = fit.model
    photos, names = fit.gate_photos[:: args.stride], fit.gate_names[:: args.stride]
    agreement, scores = file_agreement(bundle, model, photos)
    refused = ood_refused(scores, model.limit, names, photos)

    def edit(m: dict) -> None:
        m["ood"] |= {
            **ood.described(model),
            "fitted_on": ood.FITTED_ON + " (the bundle's int8 ONNX features: mpox-train gate)",
            "limit": model.limit,
            "refused": refused,
            "refused_on": REFUSED_ON,
        }
        for name, metrics in agreement.items():
            m["files"][name]["metrics"] |= metrics

    name = bundle.manifest.document["ood"]["file"]
    derive(bundle, args.out, "gate", edit, {name: model.to_bytes()})
    print(f"new bundle {args.out} (unsigned: mpox-screen bundle sign); limit {model.limit:.3f}")
