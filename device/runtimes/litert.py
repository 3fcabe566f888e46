"""LiteRT for `.tflite` files: ai-edge-litert, or the old tflite-runtime as a fallback import.

Int8 tensors are (de)quantized here with the scale and zero point stored in the model, so a
fully int8 file and a float one look the same to the caller. Outputs are told apart by rank
(logits 2-D, cam 4-D): converters rename them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device import DeviceError
from device.runtimes import layout_of, register


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise DeviceError(
                "no LiteRT runtime: pip install 'mpox-screen[tflite]' (ai-edge-litert)"
            ) from None
    return Interpreter


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if not scale:
        return x.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if not scale:
        return q.astype(np.float32)
    return ((q.astype(np.float32) - zero) * scale).astype(np.float32)


@register(".tflite")
class LiteRtRuntime:
    def __init__(self, path: Path, threads: int, data: bytes | None = None):
        try:
            source = {"model_content": data} if data else {"model_path": str(path)}
            self.interp = _interpreter_class()(**source, num_threads=threads)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise DeviceError(f"{path.name}: LiteRT cannot load it: {e}") from None
        self.input = self.interp.get_input_details()[0]
        self.layout = layout_of(self.input["shape"])
        self.input_size = int(self.input["shape"][2])
        by_rank = {len(d["shape"]): d for d in self.interp.get_output_details()}
        if set(by_rank) != {2, 4}:
            raise DeviceError(f"{path.name}: expected a 2-D logits and a 4-D cam output")
        self.logits, self.cam = by_rank[2], by_rank[4]

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.interp.set_tensor(self.input["index"], quantize(x, self.input))
        self.interp.invoke()
        logits = dequantize(self.interp.get_tensor(self.logits["index"]), self.logits)
        cam = dequantize(self.interp.get_tensor(self.cam["index"]), self.cam)
        return logits[0], cam[0]
