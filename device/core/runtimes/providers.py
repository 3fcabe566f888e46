"""Which ONNX Runtime execution providers run the model (config `providers`).

`auto` takes TensorRT, then CUDA, then the CPU, whichever the installed ONNX Runtime has: PyPI's
aarch64 and x86 wheels have only the CPU (and Azure, which runs nothing locally), a Jetson's
JetPack build has CUDA and TensorRT. A list (`cuda,cpu`) is taken as given, and a provider the
installed ONNX Runtime lacks is a one-line error, not a silent fall back to the CPU. TensorRT
builds an engine for the model on first use (minutes on a Jetson) and keeps it in a cache folder
(under the kit's state folder), so later starts reuse it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from device import DeviceError

NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
SHORT = {v: k for k, v in NAMES.items()}
AUTO = ("tensorrt", "cuda", "cpu")  # fastest first
ENGINES = "engines"  # TensorRT's engine cache, under the kit's state folder


def parse(setting: str) -> tuple[str, ...]:
    """`auto` or a comma list of tensorrt, cuda, cpu (checked when the config is read)."""
    if setting == "auto":
        return ("auto",)
    names = tuple(n.strip().lower() for n in setting.split(","))
    unknown = [n for n in names if n not in NAMES]
    if unknown or not names:
        raise DeviceError(f"providers {setting!r}: use auto or a comma list of {', '.join(NAMES)}")
    return names


def choose(setting: str, available: Sequence[str]) -> list[str]:
    """ONNX Runtime provider names to ask for, in order, from `available` (ORT's own list)."""
    names = parse(setting)
    if names == ("auto",):
        return [NAMES[n] for n in AUTO if NAMES[n] in available or n == "cpu"]
    missing = [n for n in names if NAMES[n] not in available and n != "cpu"]
    if missing:
        have = ", ".join(SHORT[p] for p in available if p in SHORT) or "cpu"
        raise DeviceError(
            f"providers: {', '.join(missing)} is not in this ONNX Runtime (it has {have}); "
            'install the build for this board or set providers = "auto"'
        )
    return [NAMES[n] for n in names]


def options(chosen: Sequence[str], cache: Path | None) -> list[dict]:
    """Per provider options: TensorRT keeps its engines in `cache` (None: no cache)."""
    out = []
    for name in chosen:
        if name == NAMES["tensorrt"] and cache is not None:
            out.append({"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache)})
        else:
            out.append({})
    return out
