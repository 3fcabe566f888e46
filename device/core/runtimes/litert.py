"""LiteRT for `.tflite` files: ai-edge-litert, or the old tflite-runtime as a fallback import.

Int8 tensors are (de)quantized here with the scale and zero point stored in the model, so a
fully int8 file and a float one look the same to the caller. Outputs are told apart by shape,
as converters rename them: cam is the 4-D one; of the 2-D ones logits is the narrowest (a few
classes) and features, when present, the other (hundreds of channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device import DeviceError
from device.core.runtimes import Outputs, layout_of, register


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
    where = "cpu"  # LiteRT's XNNPACK delegate: the CPU on every board

    def __init__(self, path: Path, threads: int, data: bytes | None = None, place=None):
        try:
            source = {"model_content": data} if data else {"model_path": str(path)}
            self.interp = _interpreter_class()(**source, num_threads=threads)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise DeviceError(f"{path.name}: LiteRT cannot load it: {e}") from None
        self.input = self.interp.get_input_details()[0]
        self.layout = layout_of(self.input["shape"])
        self.input_size = int(self.input["shape"][2])
        outs = self.interp.get_output_details()
        flat = sorted((d for d in outs if len(d["shape"]) == 2), key=lambda d: d["shape"][1])
        maps = [d for d in outs if len(d["shape"]) == 4]
        if len(maps) != 1 or len(flat) not in (1, 2) or len(outs) != len(flat) + 1:
            raise DeviceError(f"{path.name}: expected a 2-D logits, a 4-D cam (and 2-D features)")
        self.logits, self.cam = flat[0], maps[0]
        self.features = flat[1] if len(flat) == 2 else None

    def _get(self, detail: dict) -> np.ndarray:
        return dequantize(self.interp.get_tensor(detail["index"]), detail)[0]

    def run(self, x: np.ndarray) -> Outputs:
        self.interp.set_tensor(self.input["index"], quantize(x, self.input))
        self.interp.invoke()
        feats = self._get(self.features) if self.features is not None else None
        return Outputs(self._get(self.logits), self._get(self.cam), feats)
