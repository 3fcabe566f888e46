"""Read and check a model bundle: the manifest is the only contract with the host.

Everything the device does with a bundle goes through `load_bundle`, which refuses a bundle whose
manifest fails `device.manifest_check`, or with a missing file, a file outside the bundle or a
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
from device.manifest_check import inside, pinned_files, read_manifest, validate
from device.ood import OodModel, from_bytes

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


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
    manifest: dict
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)

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
            ModelFile(n, self.root / n, f["format"], f["precision"], f["layout"], self.blobs.get(n))
            for n, f in self.manifest["files"].items()
        ]

    def ood(self) -> OodModel | None:
        """The "cannot judge" parameters, or None for a bundle made before them."""
        entry = self.manifest.get("ood")
        if entry is None:
            return None
        data = self.blobs.get(entry["file"]) or verified_bytes(self.root, entry["file"], entry)
        return from_bytes(data, entry["limit"], f"bundle {self.root}: {entry['file']}")

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


def verified_bytes(root: Path, name: str, entry: dict) -> bytes:
    """The file's bytes, read once, after checking it stays in the bundle, its size and sha256."""
    path = inside(root, name)
    if path.stat().st_size != entry["size"] or entry["size"] > MAX_MODEL_BYTES:
        raise DeviceError(f"bundle {root}: {name} is not the size its manifest gives")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
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
    manifest = read_manifest(path)
    validate(manifest, str(path))
    blobs = {}
    if verify:
        blobs = {n: verified_bytes(root, n, e) for n, e in pinned_files(manifest).items()}
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
