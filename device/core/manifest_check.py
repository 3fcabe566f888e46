"""The one bundle validator: every value the kit acts on is checked before it is used.

A manifest is data from outside (a USB stick, an edited folder), so a NaN threshold, a file name
that walks out of the bundle or a zero std is refused here with one line, not used. Standard
library only: `systemd/install.sh` runs it with the system's python3 before copying anything.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

from device import DeviceError
from device.core.names import plain_name

SCHEMA = "mpox-screen-bundle/1"
MAX_MANIFEST_BYTES = 1 << 20  # real manifests are about 5 KB
TASKS = ("binary", "multiclass")
COLOUR_ORDERS = (
    "RGB",
)  # what device.core.preprocess feeds; a BGR model would need a swap it lacks
SCALES = ("1/255",)  # pixel values / 255 before mean and std (device.core.preprocess)
# Every field of schema 1: the kit acts on the first group and shows or reports the second;
# anything else is refused, so a field the host adds cannot be silently ignored
ACTED_ON = {"schema", "model", "task", "classes", "positive_class", "threshold", "input", "outputs"}
ACTED_ON |= {"files", "ood", "card", "created"}
DESCRIPTIVE = {"operating_point", "metrics", "data", "host", "trained_from_commit", "export"}
DESCRIPTIVE |= {"bench"}  # benchmark baselines: parameters and MACs
DESCRIPTIVE |= {"site_calibration"}  # mpox-train calibrate --site: the site's threshold, why
INPUT_KEYS = {"size", "colour_order", "mean", "std", "scale", "resize", "crop", "colour_constancy"}
RESIZES = ("area", "linear", "cubic")
CROPS = ("center_square", "none")
COLOUR_CONSTANCY = ("none", "shades_of_grey")
FORMATS = {"onnx": ".onnx", "tflite": ".tflite"}
PRECISIONS = ("fp32", "int8")
LAYOUTS = ("NCHW", "NHWC")
SHA256 = re.compile(r"[0-9a-f]{64}")
CARD = "card.md"


def _fail(where: str, what: str):
    raise DeviceError(f"{where}: {what}")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _one_of(d: dict, key: str, allowed, where: str, default=None) -> None:
    value = d.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        _fail(where, f"'{key}' is {value!r}; expected one of {', '.join(map(str, allowed))}")


def _known(d: dict, keys: set[str], where: str) -> None:
    if unknown := sorted(set(d) - keys):
        _fail(where, f"unknown field(s) {', '.join(map(repr, unknown))[:200]} in {SCHEMA}")


def _require(d, keys, where: str) -> None:
    if not isinstance(d, dict):
        _fail(where, "not a JSON object")
    for key in keys:
        if key not in d:
            _fail(where, f"missing key '{key}'")


def read_manifest(path: Path) -> dict:
    """Parse manifest.json with a size limit; any failure is one line."""
    try:
        if path.is_symlink() or not path.is_file():
            _fail(str(path), "not a regular file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            _fail(str(path), f"larger than {MAX_MANIFEST_BYTES // 1024} KiB: not a manifest")
        return json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        raise DeviceError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise DeviceError(f"{path}: JSON nested too deeply") from None
    except OSError as e:
        raise DeviceError(f"{path}: cannot read it ({e.strerror})") from None


def validate(m, where: str) -> None:
    """Raise DeviceError naming the first problem; return quietly for a usable manifest."""
    _require(m, ["schema"], where)
    if m["schema"] != SCHEMA:
        _fail(where, f"unknown schema {m['schema']!r} (this kit reads {SCHEMA})")
    keys = ("model", "task", "classes", "positive_class", "threshold", "input", "outputs", "files")
    _require(m, keys, where)
    _known(m, ACTED_ON | DESCRIPTIVE, where)
    _require(m["model"], ["name", "version"], f"{where} model")
    if not all(isinstance(m["model"][k], str) and m["model"][k] for k in ("name", "version")):
        _fail(where, "model name and version must be non-empty text")
    plain_name(m["model"]["name"], f"{where} model name")  # it names the installed folder
    if "created" in m:
        created_at(m, where)
    _one_of(m, "task", TASKS, where)
    _classes(m, where)
    if not _number(m["threshold"]) or not 0 <= m["threshold"] <= 1:
        _fail(where, f"threshold {m['threshold']!r} is not a number in [0, 1]")
    _input(m["input"], f"{where} input")
    _outputs(m["outputs"], len(m["classes"]), f"{where} outputs")
    if not isinstance(m["files"], dict) or not m["files"]:
        _fail(where, "lists no model files")
    for name, entry in m["files"].items():
        _file_entry(name, entry, f"{where} files[{name!r}]")
    if "ood" in m:
        _ood(m["ood"], m["outputs"], f"{where} ood")
    if "card" in m:
        _pin(m["card"], f"{where} card")
        if m["card"]["file"] != CARD:
            _fail(f"{where} card", f"file must be {CARD}")


def created_at(m: dict, where: str = "manifest") -> datetime:
    """When the bundle was made, as a time (not text: '+14:00' sorts wrong as text)."""
    value = m.get("created")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        _fail(where, f"'created' {str(value)[:40]!r} is not an ISO 8601 time")
    if when.tzinfo is None:
        _fail(where, f"'created' {value!r} has no time zone")
    return when.astimezone(timezone.utc)


def _classes(m: dict, where: str) -> None:
    classes = m["classes"]
    if not isinstance(classes, list) or len(classes) < 2:
        _fail(where, "'classes' must list at least two class names")
    if not all(isinstance(c, str) and c for c in classes):
        _fail(where, "class names must be non-empty text")
    if len(set(classes)) != len(classes):
        _fail(where, f"duplicate class names in {classes}")
    if m["positive_class"] not in classes:
        _fail(where, f"positive class is not one of {classes}")


def _input(inp, where: str) -> None:
    _require(inp, ("size", "colour_order", "mean", "std", "resize", "crop"), where)
    size = inp["size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1024:
        _fail(where, f"size {size!r} is not a whole number of pixels in 16..1024")
    _known(inp, INPUT_KEYS, where)
    _one_of(inp, "colour_order", COLOUR_ORDERS, where)
    _one_of(inp, "scale", SCALES, where, default="1/255")
    _one_of(inp, "resize", RESIZES, where)
    _one_of(inp, "crop", CROPS, where)
    _one_of(inp, "colour_constancy", COLOUR_CONSTANCY, where, default="none")
    for key in ("mean", "std"):
        v = inp[key]
        if not isinstance(v, list) or len(v) != 3 or not all(map(_number, v)):
            _fail(where, f"{key} must be three finite numbers")
    if not all(s > 0 for s in inp["std"]):
        _fail(where, "std must be positive")


def _outputs(outputs, classes: int, where: str) -> None:
    if not isinstance(outputs, dict):
        _fail(where, "not a JSON object")
    shape = (
        outputs.get("logits", {}).get("shape") if isinstance(outputs.get("logits"), dict) else None
    )
    if shape is not None and shape != [1, classes]:
        _fail(where, f"logits shape {shape} does not match {classes} classes")


def _file_entry(name, entry, where: str) -> None:
    plain_name(name, f"{where} a model file")
    _require(entry, ("format", "precision", "layout", "sha256", "size"), where)
    _one_of(entry, "format", FORMATS, where)
    if not name.endswith(FORMATS[entry["format"]]):
        _fail(where, f"a {entry['format']} file must end in {FORMATS[entry['format']]}")
    _one_of(entry, "precision", PRECISIONS, where)
    _one_of(entry, "layout", LAYOUTS, where)
    _hash_and_size(entry, where)


def _hash_and_size(entry: dict, where: str) -> None:
    if not isinstance(entry["sha256"], str) or not SHA256.fullmatch(entry["sha256"]):
        _fail(where, "sha256 must be 64 lower-case hex digits")
    size = entry["size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_FILE_BYTES:
        _fail(where, f"size must be a whole number of bytes in 1..{MAX_FILE_BYTES}")


def _pin(entry, where: str) -> None:
    """A file other than a model pinned by name, sha256 and size (the card, the OOD data)."""
    _require(entry, ("file", "sha256", "size"), where)
    plain_name(entry["file"], f"{where} file")
    _hash_and_size(entry, where)


MAX_FILE_BYTES = 256 << 20  # the largest file a bundle may pin (models are ~1-15 MB)
OOD_VERSIONS = (1, 2, 3)  # 2: layers' reference centres; 3: the lesion check (device/core/ood.py)


def _ood(ood, outputs: dict, where: str) -> None:
    """The optional "cannot judge" parameters (device/core/ood.py); older bundles lack it."""
    _require(ood, ("version", "file", "sha256", "size", "limit"), where)
    if ood["version"] not in OOD_VERSIONS:
        versions = " or ".join(map(str, OOD_VERSIONS))
        _fail(where, f"version {ood['version']!r} is not one this kit reads ({versions})")
    _pin(ood, where)
    if not ood["file"].endswith(".npz"):
        _fail(where, "file must be a plain .npz file name inside the bundle")
    if not _number(ood["limit"]) or ood["limit"] <= 0:
        _fail(where, f"limit {ood['limit']!r} is not a positive number")
    if "features" not in outputs:
        _fail(where, "needs the model's 'features' output, which 'outputs' does not list")


def pinned_files(m: dict) -> dict[str, dict]:
    """Every file the manifest pins by sha256: the model files, the OOD parameters, the card."""
    pinned = dict(m["files"])
    for key in ("ood", "card"):
        if key in m:
            pinned[m[key]["file"]] = m[key]
    return pinned


def inside(root: Path, name: str) -> Path:
    """root/name, refused unless it is a regular file whose real path stays in the bundle."""
    path = root / name
    real, base = path.resolve(), root.resolve()
    if base not in real.parents:
        raise DeviceError(f"bundle {root}: {name} points outside the bundle")
    if not real.is_file():
        raise DeviceError(f"bundle {root}: model file {name} is missing")
    return path


def main(argv: list[str]) -> int:
    """`python3 -m device.core.manifest_check BUNDLE`: for install.sh. Prints `sha256 name`
    lines."""
    import sys

    try:
        root = Path(argv[0])
        m = read_manifest(root / "manifest.json")
        validate(m, str(root / "manifest.json"))
        for name, entry in pinned_files(m).items():
            inside(root, name)
            print(f"{entry['sha256']} {name}")
    except DeviceError as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
