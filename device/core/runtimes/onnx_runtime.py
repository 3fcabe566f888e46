"""ONNX Runtime for `.onnx` files (fp32, or QDQ int8 whose graph takes and returns float)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from device import DeviceError
from device.core.runtimes import Outputs, Placement, layout_of, register
from device.core.runtimes.providers import SHORT, choose, options


@register(".onnx")
class OnnxRuntime:
    def __init__(
        self, path: Path, threads: int, data: bytes | None = None, place: Placement | None = None
    ):
        place = place or Placement()
        # onnxruntime 1.32 writes a telemetry database under ~/.cache on every session
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Spinning threads steal the cores the camera and renderer need (docs/design.md).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        chosen = choose(place.providers, ort.get_available_providers())
        if place.cache is not None and "TensorrtExecutionProvider" in chosen:
            place.cache.mkdir(parents=True, exist_ok=True)
        try:
            self.session = ort.InferenceSession(
                data or str(path),
                opts,
                providers=chosen,
                provider_options=options(chosen, place.cache),
            )
        except Exception as e:  # ORT raises its own Fail/InvalidGraph types
            raise DeviceError(f"{path.name}: ONNX Runtime cannot load it: {e}") from None
        self.where = SHORT.get(self.session.get_providers()[0], "cpu")
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.layout = layout_of(inp.shape)
        self.input_size = int(inp.shape[2])
        names = [o.name for o in self.session.get_outputs()]
        if names not in (["logits", "cam"], ["logits", "cam", "features"]):
            raise DeviceError(
                f"{path.name}: outputs are {names}, expected ['logits', 'cam'(, 'features')]"
            )

    def run(self, x: np.ndarray) -> Outputs:
        logits, cam, *features = self.session.run(None, {self.input_name: x})
        feats = features[0][0].astype(np.float32) if features else None
        return Outputs(logits[0].astype(np.float32), cam[0].astype(np.float32), feats)
