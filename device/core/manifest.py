"""The bundle manifest as one frozen, typed value, parsed and validated once.

`device.core.manifest_check` (standard library only, so the installer can run it with the system's
python3) refuses a manifest with a bad or unknown field; `Manifest.parse` then gives the kit typed
fields for everything it acts on. What the kit only shows or reports (metrics, data provenance,
the operating point, benchmark facts) stays in `document`, read-only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from device.core.manifest_check import created_at, validate


@dataclass(frozen=True)
class InputSpec:
    """How a photo becomes the model's input (device.core.preprocess): the host's training
    recipe."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str  # area | linear | cubic
    crop: str  # center_square | none
    colour_constancy: str = "none"  # none | shades_of_grey
    colour_order: str = "RGB"  # the only order the validator accepts

    def as_dict(self) -> dict:
        return {
            "size": self.size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": self.resize,
            "crop": self.crop,
            "colour_constancy": self.colour_constancy,
            "colour_order": self.colour_order,
        }


@dataclass(frozen=True)
class Pin:
    """A file of the bundle pinned by sha256 and size (a model, the OOD data, the card)."""

    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelEntry(Pin):
    format: str  # onnx | tflite
    precision: str  # fp32 | int8
    layout: str  # NCHW | NHWC


@dataclass(frozen=True)
class OodEntry(Pin):
    limit: float  # above this summed score: cannot judge


@dataclass(frozen=True)
class Manifest:
    name: str  # the installed folder's name
    version: str
    architecture: str
    task: str  # binary | multiclass
    classes: tuple[str, ...]
    positive_class: str
    threshold: float
    input: InputSpec
    files: tuple[ModelEntry, ...]
    ood: OodEntry | None
    card: Pin | None
    created: datetime | None
    document: Mapping[str, Any]  # the whole JSON, read-only: what the kit shows, not acts on

    @classmethod
    def parse(cls, m: Any, where: str) -> Manifest:
        """A validated manifest (DeviceError naming the first problem otherwise)."""
        validate(m, where)
        inp, model = m["input"], m["model"]
        ood, card = m.get("ood"), m.get("card")
        return cls(
            name=model["name"],
            version=model["version"],
            architecture=str(model.get("architecture", model["name"])),
            task=m["task"],
            classes=tuple(m["classes"]),
            positive_class=m["positive_class"],
            threshold=float(m["threshold"]),
            input=InputSpec(
                int(inp["size"]),
                tuple(map(float, inp["mean"])),
                tuple(map(float, inp["std"])),
                inp["resize"],
                inp["crop"],
                inp.get("colour_constancy", "none"),
                inp["colour_order"],
            ),
            files=tuple(
                ModelEntry(n, e["sha256"], e["size"], e["format"], e["precision"], e["layout"])
                for n, e in m["files"].items()
            ),
            ood=ood and OodEntry(ood["file"], ood["sha256"], ood["size"], float(ood["limit"])),
            card=card and Pin(card["file"], card["sha256"], card["size"]),
            created=created_at(m, where) if "created" in m else None,
            document=_frozen(m),
        )

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.positive_class)

    def pinned(self) -> tuple[Pin, ...]:
        """Every file the manifest pins: the model files, the OOD parameters, the card."""
        return self.files + tuple(p for p in (self.ood, self.card) if p is not None)

    def entry(self, file: str) -> ModelEntry:
        return next(f for f in self.files if f.file == file)


def _frozen(m: dict) -> Mapping[str, Any]:
    """A read-only deep copy: nothing downstream can edit the manifest it was checked as."""
    copy = json.loads(json.dumps(m))
    return MappingProxyType(copy)
