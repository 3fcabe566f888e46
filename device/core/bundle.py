"""Read and check a model bundle: the manifest is the only contract with the host.

Everything the device does with a bundle goes through `load_bundle`, which refuses a bundle whose
manifest fails `device.core.manifest_check`, or with a missing file, a file outside the bundle or a
sha256 mismatch, with one line saying which. The bytes that were hashed are the bytes the runtime
loads: a file swapped on disk after the check never runs.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from device import DeviceError
from device.core.manifest import Manifest, Pin
from device.core.manifest_check import inside, read_manifest
from device.core.ood import OodModel, from_bytes

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path
    format: str  # "onnx" | "tflite"
    precision: str  # "fp32" | "int8"
    layout: str  # "NCHW" | "NHWC"
    data: bytes | None = None  # the verified bytes (None when loaded with verify=False)


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: Manifest
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def classes(self) -> list[str]:
        return list(self.manifest.classes)

    @property
    def positive_index(self) -> int:
        return self.manifest.positive_index

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    @property
    def input(self) -> dict:
        """The preprocessing contract as device.core.preprocess takes it."""
        return self.manifest.input.as_dict()

    def files(self) -> list[ModelFile]:
        blob = self.blobs.get
        return [
            ModelFile(f.file, self.root / f.file, f.format, f.precision, f.layout, blob(f.file))
            for f in self.manifest.files
        ]

    def ood(self) -> OodModel | None:
        """The "cannot judge" parameters, or None for a bundle made before them."""
        pin = self.manifest.ood
        if pin is None:
            return None
        data = self.blobs.get(pin.file) or verified_bytes(self.root, pin)
        return from_bytes(data, pin.limit, f"bundle {self.root}: {pin.file}")

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


MAX_MODEL_BYTES = 256 << 20


def verified_bytes(root: Path, pin: Pin) -> bytes:
    """The file's bytes, read once, after checking it stays in the bundle, its size and sha256."""
    name = pin.file
    path = inside(root, name)
    if path.stat().st_size != pin.size or pin.size > MAX_MODEL_BYTES:
        raise DeviceError(f"bundle {root}: {name} is not the size its manifest gives")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != pin.sha256:
        raise DeviceError(f"bundle {root}: {name} does not match its sha256 (damaged or edited)")
    return data


def load_bundle(root: Path | str, verify: bool = True) -> Bundle:
    root = Path(root)
    path = root / "manifest.json"
    if not path.is_file():
        hint = ""
        if not root.exists() and root.name == str(root) and (MODELS_DIR / root.name).is_dir():
            hint = f" (did you mean {MODELS_DIR / root.name}?)"
        raise DeviceError(f"{root} is not a model bundle (no manifest.json){hint}")
    manifest = Manifest.parse(read_manifest(path), str(path))
    blobs = {}
    if verify:
        blobs = {pin.file: verified_bytes(root, pin) for pin in manifest.pinned()}
    return Bundle(root, manifest, blobs)


def installed_prefix() -> Path | None:
    """PREFIX when running from the venv systemd/install.sh made (PREFIX/venv, its marker)."""
    prefix = Path(sys.prefix).parent
    return prefix if (prefix / ".mpox-screen-install").is_file() else None


def default_bundle_dir() -> Path:
    """$MPOX_BUNDLE (the service's unit sets it); else, in an installed kit, the bundle that
    `mpox-screen bundle install` made current, or the one install.sh put in PREFIX/models; else
    the bundle named in models/DEFAULT of the checkout. So `mpox-screen classify` typed on the
    kit screens with what the service uses."""
    if os.environ.get("MPOX_BUNDLE"):
        return Path(os.environ["MPOX_BUNDLE"])
    prefix = installed_prefix()
    if prefix and (prefix / "bundles" / "current" / "manifest.json").is_file():
        return prefix / "bundles" / "current"
    models = prefix / "models" if prefix else MODELS_DIR
    marker = models / "DEFAULT"
    if not marker.is_file():
        raise DeviceError(f"no default bundle ({marker} missing): pass --bundle DIR")
    return models / marker.read_text().strip()
