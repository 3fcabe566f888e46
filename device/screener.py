"""One image in, one `Prediction` out: manifest-driven preprocessing, a runtime, the decision."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from device import DeviceError
from device.bundle import Bundle, ModelFile
from device.i18n import N_, _
from device.ood import OodModel
from device.preprocess import preprocess
from device.runtimes import Outputs, Runtime, open_runtime
from device.skin import MIN_SKIN, skin_fraction


@dataclass(frozen=True)
class Prediction:
    probs: np.ndarray  # softmax over the bundle's classes
    classes: list[str]
    label: str  # the screening decision (see `decide`)
    positive_prob: float
    positive: bool  # positive_prob >= the manifest threshold
    cam: np.ndarray  # [h, w] map of `label`'s class, ReLU'd, in [0, 1]
    latency_ms: float  # preprocess + inference
    ood_score: float | None = None  # None: the bundle has no "cannot judge" parameters
    skin: float | None = None  # share of skin-coloured pixels in the square (device.skin)
    judgeable: bool = True  # False: not a photo like the training photos; show no verdict

    @property
    def no_skin(self) -> bool:
        return _no_skin(self.skin)

    def as_dict(self) -> dict:
        ood = {} if self.ood_score is None else {"ood_score": round(self.ood_score, 4)}
        ood |= {} if self.skin is None else {"skin": round(self.skin, 4)}
        return {
            "label": self.label,
            "prob": round(self.positive_prob, 6),
            "probs": {c: round(float(p), 6) for c, p in zip(self.classes, self.probs, strict=True)},
            "positive": self.positive,
            "latency_ms": round(self.latency_ms, 3),
            **ood,
        }


CANNOT_JUDGE = N_("Cannot judge: not a skin-lesion photo")  # English; shown as _(CANNOT_JUDGE)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Over the last axis: one image's logits or a batch of them."""
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def decide(probs: np.ndarray, positive: int, threshold: float) -> int:
    """The positive class at or above the validation-chosen threshold, else the likeliest other."""
    if probs[positive] >= threshold:
        return positive
    others = probs.copy()
    others[positive] = -1.0
    return int(others.argmax())


def likelihood(positive_class: str, positive: bool) -> str:
    """The kit's wording of a decision, in its language: "Mpox likely" / "Mpox unlikely"."""
    text = _("{cls} likely") if positive else _("{cls} unlikely")
    return text.format(cls=positive_class.capitalize())


def _no_skin(skin: float | None) -> bool:
    return skin is not None and skin < MIN_SKIN


def normalise_cam(cam: np.ndarray) -> np.ndarray:
    cam = np.maximum(cam, 0.0)
    top = float(cam.max())
    return cam / top if top > 0 else cam


class Screener:
    def __init__(self, bundle: Bundle, file: ModelFile, threads: int = 2):
        self.bundle, self.file = bundle, file
        self.runtime: Runtime = open_runtime(file.path, threads, file.data)
        if self.runtime.layout != file.layout or self.runtime.input_size != bundle.input["size"]:
            raise DeviceError(
                f"{file.name}: model input ({self.runtime.layout}, {self.runtime.input_size} px) "
                f"disagrees with the manifest ({file.layout}, {bundle.input['size']} px)"
            )
        self.ood: OodModel | None = bundle.ood()
        self._check_features()

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

    def predict(self, image_rgb: np.ndarray) -> Prediction:
        t0 = time.perf_counter()
        out = self.runtime.run(self.tensor(image_rgb))
        latency = (time.perf_counter() - t0) * 1000.0
        return self.to_prediction(out, latency, skin_fraction(image_rgb))

    def to_prediction(
        self, out: Outputs, latency_ms: float, skin: float | None = None
    ) -> Prediction:
        """Raw runtime outputs -> probabilities, the decision, the decided class's map and
        whether the photo can be judged at all: its features like the training photos' (the
        bundle's score) and skin in the square (`skin`, device.skin)."""
        probs = softmax(out.logits.astype(np.float64))
        pos = self.bundle.positive_index
        chosen = decide(probs, pos, self.bundle.threshold)
        score = None if self.ood is None else self.ood.score(out.features)
        return Prediction(
            probs=probs,
            classes=self.bundle.classes,
            label=self.bundle.classes[chosen],
            positive_prob=float(probs[pos]),
            positive=bool(probs[pos] >= self.bundle.threshold),
            cam=normalise_cam(out.cam[chosen]),
            latency_ms=latency_ms,
            ood_score=score,
            skin=skin,
            judgeable=(score is None or self.ood.judgeable(score)) and not _no_skin(skin),
        )
