"""One image in, one `Reading` out: manifest-driven preprocessing and a runtime (the decision is
`device.core.verdict`'s)."""

from __future__ import annotations

import time

import numpy as np

from device import DeviceError
from device.core.bundle import Bundle, ModelFile
from device.core.ood import OodModel
from device.core.preprocess import preprocess
from device.core.runtimes import Outputs, Placement, Runtime, open_runtime
from device.core.skin import skin_fraction
from device.core.verdict import Decider, Reading, Verdict


def softmax(logits: np.ndarray) -> np.ndarray:
    """Over the last axis: one image's logits or a batch of them."""
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class Screener:
    def __init__(
        self, bundle: Bundle, file: ModelFile, threads: int = 2, place: Placement | None = None
    ):
        self.bundle, self.file = bundle, file
        self.runtime: Runtime = open_runtime(file.path, threads, file.data, place)
        if self.runtime.layout != file.layout or self.runtime.input_size != bundle.input["size"]:
            raise DeviceError(
                f"{file.name}: model input ({self.runtime.layout}, {self.runtime.input_size} px) "
                f"disagrees with the manifest ({file.layout}, {bundle.input['size']} px)"
            )
        self.ood: OodModel | None = bundle.ood()
        self._check_features()
        self._one = self.decider(ood_gate=False)  # `predict`'s: window 1, nothing carried over

    def _check_features(self) -> None:
        if self.ood is None:
            return
        out = self.runtime.run(np.zeros(self._input_shape(), np.float32))
        width = None if out.features is None else out.features.shape[-1]
        if width != self.ood.dim:
            raise DeviceError(
                f"{self.file.name}: features output {width} wide; the bundle's OOD parameters "
                f"need {self.ood.dim}"
            )

    def _input_shape(self) -> tuple[int, ...]:
        size = self.runtime.input_size
        return (1, 3, size, size) if self.file.layout == "NCHW" else (1, size, size, 3)

    def tensor(self, image: np.ndarray, bgr: bool = False) -> np.ndarray:
        return preprocess(image, self.bundle.input, self.file.layout, bgr)

    def read(self, image: np.ndarray, bgr: bool = False) -> Reading:
        """The model's raw outputs for one image (the frame's small copy on the live path)."""
        t0 = time.perf_counter()
        out = self.runtime.run(self.tensor(image, bgr))
        latency = (time.perf_counter() - t0) * 1000.0
        return self.reading(out, latency, skin_fraction(image, bgr=bgr))

    def reading(self, out: Outputs, latency_ms: float, skin: float | None = None) -> Reading:
        score = None if self.ood is None else self.ood.score(out.features)
        probs = softmax(out.logits.astype(np.float64))
        return Reading(probs, out.cam, latency_ms, score, skin)

    def decider(self, window: int = 1, ood_gate: bool = True) -> Decider:
        m = self.bundle.manifest
        return Decider(list(m.classes), m.positive_class, m.threshold, self.ood, window, ood_gate)

    def predict(self, image_rgb: np.ndarray) -> Verdict:
        """One photo's verdict with the gate's finding reported, not acted on (`judgeable`):
        for evaluations, which score every photo."""
        return self._one.judge(self.read(image_rgb))
