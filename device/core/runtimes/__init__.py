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


class Runtime(Protocol):
    layout: str  # "NCHW" or "NHWC", read from the model's input shape
    input_size: int

    def run(self, x: np.ndarray) -> Outputs: ...


Factory = Callable[[Path, int, "bytes | None"], Runtime]
RUNTIMES: Registry[Factory] = Registry(
    "runtime", ("device.core.runtimes.litert", "device.core.runtimes.onnx_runtime")
)
register = RUNTIMES.register  # @register(".onnx") in a runtime's module


def open_runtime(path: Path, threads: int = 2, data: bytes | None = None) -> Runtime:
    """The runtime for `path`'s file type; `data`: the model's verified bytes (then the file is
    not read again)."""
    factory = RUNTIMES.get(path.suffix)
    if factory is None:
        known = ", ".join(RUNTIMES.names())
        raise DeviceError(f"no runtime for {path.name} (known file types: {known})")
    return factory(path, threads, data)


def layout_of(shape) -> str:
    """NCHW if the channel axis (3) comes second, NHWC if last."""
    shape = list(shape)
    if len(shape) == 4 and shape[1] == 3:
        return "NCHW"
    if len(shape) == 4 and shape[3] == 3:
        return "NHWC"
    raise DeviceError(f"model input shape {shape} is not one RGB image")
