"""`mpox-bench export-baselines` (host only: needs the train and export extras).

Each baseline is a registry model with random weights (seeded), wrapped and exported exactly as
`mpox-train export` does (`train_host.export`: the CAM graph, ONNX fp32 + ORT QDQ int8, LiteRT
fp32 + ai-edge-quantizer int8), into a small bundle of its own: the four files and a manifest
(`bench` holds parameters and MACs from torch's FlopCounterMode, as `mpox-train models`). The
kit bundle's parameters and MACs go to `profiles.json`. No gate: random weights are for timing
only, never for screening. A board then times the copied folder with no torch installed:

    mpox-bench export-baselines --out DIR      # host
    mpox-bench latency --baselines DIR         # board (DIR copied over)
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks import BenchError
from benchmarks.models import (
    DEFAULT_BASELINES,
    PROFILES,
    baseline_dir,
    bundle_key,
    default_baselines_dir,
    kit_bundle,
    parse_name,
    read_profiles,
)
from benchmarks.report import write_json

log = logging.getLogger(__name__)
SEED = 0


def add_arguments(p) -> None:
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_BASELINES),
        help="registry names, NAME@SIZE for another input size (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, default=None, help="baselines folder (default: cache)")
    p.add_argument("--bundle", type=Path, default=None, help="kit bundle to profile")
    p.add_argument(
        "--calib-data",
        type=Path,
        default=None,
        help="images for int8 calibration (default: random images; fine for timing)",
    )
    p.add_argument("--calib-count", type=int, default=16)
    p.add_argument("--force", action="store_true", help="re-export models already there")


def run(args) -> int:
    out = args.out or default_baselines_dir()
    names = [n for n in args.models.split(",") if n]
    export_all(names, out, args.bundle, args.calib_data, args.calib_count, args.force)
    return 0


def _require_host() -> None:
    try:
        import litert_torch  # noqa: F401
        import torch  # noqa: F401

        import train_host  # noqa: F401
    except ImportError as e:
        raise BenchError(
            f"exporting needs the host extras ({e}): pip install -e '.[train,export]', "
            "or copy a baselines folder exported on a host"
        ) from None


def export_all(
    names: list[str],
    out: Path,
    bundle_dir: Path | None = None,
    calib_data: Path | None = None,
    calib_count: int = 16,
    force: bool = False,
) -> None:
    _require_host()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out.mkdir(parents=True, exist_ok=True)
    write_bundle_profile(kit_bundle(bundle_dir), out)
    for text in names:
        name, size = parse_name(text)
        folder = baseline_dir(out, name, size)
        if (folder / "manifest.json").is_file() and not force:
            log.info("%s: already in %s", text, folder)
            continue
        t0 = time.perf_counter()
        export_baseline(name, size, folder, calib_data, calib_count)
        log.info("%s: exported to %s in %.0f s", text, folder, time.perf_counter() - t0)


def count(model, size: int) -> tuple[int, int]:
    """(parameters, multiply-accumulates) of one image, as `mpox-train models` counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, size, size))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def write_bundle_profile(bundle, out: Path) -> None:
    """Parameters and MACs of the kit's bundle (its checkpoint's exact model where present)."""
    profiles = read_profiles(out)
    key = bundle_key(bundle)
    if key in profiles:
        return
    from train_host.checkpoint import load_model
    from train_host.models import create_model

    size = int(bundle.input["size"])
    arch = bundle.manifest.architecture
    ckpt = bundle.root / "checkpoint.pt"
    model = load_model(ckpt)[0] if ckpt.is_file() else create_model(arch, len(bundle.classes), size)
    params, macs = count(model, size)
    profiles[key] = {"architecture": arch, "input_size": size, "params": params, "macs": macs}
    write_json(out / PROFILES, profiles)


def preprocess_spec(name: str, size: int):
    from train_host.models.efficientnet_lite import LITE0_MEAN, LITE0_STD
    from train_host.preprocess import PreprocessSpec

    if name == "efficientnet_lite0":
        return PreprocessSpec(size, mean=LITE0_MEAN, std=LITE0_STD)
    return PreprocessSpec(size)


def calibration(spec, calib_data: Path | None, n: int) -> list[np.ndarray]:
    from train_host.preprocess import preprocess

    if calib_data is not None:
        from device.core.images import find_images, read_rgb

        files = [f.path for f in find_images([calib_data]) if not f.problem][:n]
        if not files:
            raise BenchError(f"no images under {calib_data}")
        return [preprocess(read_rgb(f), spec) for f in files]
    rng = np.random.default_rng(SEED)
    return [
        preprocess(rng.integers(0, 256, (spec.size, spec.size, 3), dtype=np.uint8), spec)
        for _ in range(n)
    ]


def export_baseline(
    name: str, size: int | None, folder: Path, calib_data: Path | None, calib_count: int
) -> None:
    import torch

    from train_host.export import exporter
    from train_host.export.manifest import file_entry
    from train_host.models import create_model, get_spec
    from train_host.models.camgraph import wrap
    from train_host.models.registry import without_builtin_weights

    size = size or get_spec(name).default_input_size
    torch.manual_seed(SEED)
    model = create_model(name, 2, size, **without_builtin_weights(name)).eval()
    params, macs = count(model, size)
    spec = preprocess_spec(name, size)
    calib = calibration(spec, calib_data, calib_count)
    stage = folder.with_name(folder.name + ".staging")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        cam = wrap(model, size)
        for f in exporter.FILES:
            exporter.build_file(f, cam, spec, calib, stage)
            (stage / f.name).chmod(0o644)
        with torch.no_grad():
            cam_shape = list(cam(torch.zeros(1, 3, size, size))[1].shape)
        files = {
            f.name: file_entry(stage / f.name, f.format, f.precision, f.layout, {})
            for f in exporter.FILES
        }
        write_json(
            stage / "manifest.json",
            manifest(name, size, spec, files, cam_shape, params, macs, calib_data, len(calib)),
        )
        shutil.rmtree(folder, ignore_errors=True)
        stage.replace(folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def manifest(name, size, spec, files, cam_shape, params, macs, calib_data, n_calib) -> dict:
    from device.core.manifest_check import SCHEMA
    from train_host import __version__

    return {
        "schema": SCHEMA,
        "model": {
            "name": f"{name}-baseline-{size}",
            "architecture": name,
            "version": f"{__version__}+random-weights",
        },
        "task": "binary",
        "classes": ["other", "mpox"],
        "positive_class": "mpox",
        "threshold": 0.5,
        "input": {
            "size": size,
            "colour_order": "RGB",
            "mean": list(spec.mean),
            "std": list(spec.std),
            "scale": "1/255",
            "resize": spec.resize,
            "crop": spec.crop,
            "colour_constancy": "none",
        },
        "outputs": {
            "logits": {"shape": [1, 2], "meaning": "class scores; softmax"},
            "cam": {"shape": cam_shape, "meaning": "Grad-CAM per class before ReLU"},
        },
        "files": files,
        "bench": {
            "params": params,
            "macs": macs,
            "weights": f"random (torch seed {SEED}): for timing only, never for screening",
            "calibration": f"{n_calib} "
            + (f"images from {calib_data}" if calib_data else "random images"),
        },
    }
