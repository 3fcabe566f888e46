"""Read and check a model bundle: the manifest is the only contract with the host (design.md).

Everything the device does with a bundle goes through `load_bundle`, which refuses a bundle with a
missing key, an unknown schema, a missing file or a sha256 mismatch, with one line saying which.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from device import DeviceError

SCHEMA = "mpox-screen-bundle/1"
REQUIRED = {
    "schema": str,
    "model": dict,
    "task": str,
    "classes": list,
    "positive_class": str,
    "threshold": (int, float),
    "input": dict,
    "outputs": dict,
    "files": dict,
}
INPUT_KEYS = ("size", "colour_order", "mean", "std", "resize", "crop")
FILE_KEYS = ("format", "precision", "layout", "sha256", "size")
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path
    format: str  # "onnx" | "tflite"
    precision: str  # "fp32" | "int8"
    layout: str  # "NCHW" | "NHWC"


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict

    @property
    def name(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.manifest["positive_class"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"])

    @property
    def input(self) -> dict:
        return self.manifest["input"]

    def files(self) -> list[ModelFile]:
        return [
            ModelFile(n, self.root / n, f["format"], f["precision"], f["layout"])
            for n, f in self.manifest["files"].items()
        ]

    def select(self, backend: str, precision: str) -> ModelFile:
        for f in self.files():
            if f.format == backend and f.precision == precision:
                return f
        have = ", ".join(f"{f.format}/{f.precision}" for f in self.files())
        raise DeviceError(f"bundle {self.root} has no {backend}/{precision} file (it has {have})")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _require(d: dict, keys, where: str) -> None:
    for key in keys:
        if key not in d:
            raise DeviceError(f"{where}: missing key '{key}'")


def validate(manifest: dict, where: str) -> None:
    if not isinstance(manifest, dict):
        raise DeviceError(f"{where}: not a JSON object")
    _require(manifest, ["schema"], where)
    if manifest["schema"] != SCHEMA:
        raise DeviceError(
            f"{where}: unknown schema {manifest['schema']!r} (this kit reads {SCHEMA})"
        )
    _require(manifest, REQUIRED, where)
    for key, kind in REQUIRED.items():
        if not isinstance(manifest[key], kind):
            raise DeviceError(f"{where}: '{key}' has the wrong type")
    _require(manifest["model"], ["name", "version"], f"{where} model")
    _require(manifest["input"], INPUT_KEYS, f"{where} input")
    if manifest["positive_class"] not in manifest["classes"]:
        raise DeviceError(f"{where}: positive class is not one of {manifest['classes']}")
    if not manifest["files"]:
        raise DeviceError(f"{where}: lists no model files")
    for name, entry in manifest["files"].items():
        _require(entry, FILE_KEYS, f"{where} files[{name}]")


def check_files(root: Path, manifest: dict) -> None:
    for name, entry in manifest["files"].items():
        path = root / name
        if not path.is_file():
            raise DeviceError(f"bundle {root}: model file {name} is missing")
        if sha256(path) != entry["sha256"]:
            raise DeviceError(
                f"bundle {root}: {name} does not match its sha256 (damaged or edited)"
            )


def load_bundle(root: Path | str, verify: bool = True) -> Bundle:
    root = Path(root)
    path = root / "manifest.json"
    if not path.is_file():
        raise DeviceError(f"{root} is not a model bundle (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DeviceError(f"{path}: not valid JSON ({e})") from None
    validate(manifest, str(path))
    if verify:
        check_files(root, manifest)
    return Bundle(root, manifest)


def default_bundle_dir() -> Path:
    """$MPOX_BUNDLE, else the bundle named in models/DEFAULT beside the package."""
    if os.environ.get("MPOX_BUNDLE"):
        return Path(os.environ["MPOX_BUNDLE"])
    marker = MODELS_DIR / "DEFAULT"
    if not marker.is_file():
        raise DeviceError(f"no default bundle ({marker} missing): pass --bundle DIR")
    return MODELS_DIR / marker.read_text().strip()
