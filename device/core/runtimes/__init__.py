"""Inference runtimes, picked by model file suffix from a registry (like Frigate's detectors).

A runtime takes the preprocessed float32 batch in its file's layout and returns float32
`Outputs`; int8 input/output scales are read from the model and handled inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from device import DeviceError
from device.registry import Registry


@dataclass(frozen=True)
class Outputs:
    logits: np.ndarray  # [C]
    cam: np.ndarray  # [C, h, w]
    features: np.ndarray | None = None  # [D] standardised OOD features (bundles with `ood`)


@dataclass(frozen=True)
class Placement:
    """Where a runtime runs the model: ONNX Runtime's providers (`providers.py`: auto, or a
    comma list of tensorrt, cuda, cpu) and TensorRT's engine cache. LiteRT runs on the CPU."""

    providers: str = "auto"
    cache: Path | None = None


class Runtime(Protocol):
    layout: str  # "NCHW" or "NHWC", read from the model's input shape
    input_size: int
    where: str  # what runs it: cpu, cuda or tensorrt (the screen's footer says it)

    def run(self, x: np.ndarray) -> Outputs: ...


Factory = Callable[[Path, int, "bytes | None", Placement], Runtime]
RUNTIMES: Registry[Factory] = Registry(
    "runtime", ("device.core.runtimes.litert", "device.core.runtimes.onnx_runtime")
)
register = RUNTIMES.register  # @register(".onnx") in a runtime's module


def open_runtime(
    path: Path, threads: int = 2, data: bytes | None = None, place: Placement | None = None
) -> Runtime:
    """The runtime for `path`'s file type; `data`: the model's verified bytes (then the file is
    not read again); `place`: where (default: the fastest this machine has)."""
    factory = RUNTIMES.get(path.suffix)
    if factory is None:
        known = ", ".join(RUNTIMES.names())
        raise DeviceError(f"no runtime for {path.name} (known file types: {known})")
    return factory(path, threads, data, place or Placement())


def layout_of(shape) -> str:
    """NCHW if the channel axis (3) comes second, NHWC if last."""
    shape = list(shape)
    if len(shape) == 4 and shape[1] == 3:
        return "NCHW"
    if len(shape) == 4 and shape[3] == 3:
        return "NHWC"
    raise DeviceError(f"model input shape {shape} is not one RGB image")
