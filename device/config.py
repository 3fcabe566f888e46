"""The daemon's settings: one flat TOML file, every key also a command-line flag.

`stall_timeout` and `retry_max` stop at 10 s: the service's watchdog (30 s) must hear from the
loop between two camera retries.

The dataclass is the single source of truth: defaults, types, ranges and the help text of the
commented default file all come from the field metadata, so the file, the flags and the checks
cannot drift apart. `ClassifyOptions` does the same for `mpox-screen classify` (no config file);
both live here, free of OpenCV and the runtimes, so building the command line stays cheap.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from device import DeviceError
from device.core.runtimes.providers import parse as parse_providers
from device.i18n import LANGUAGES
from device.options import option, whole_number
from device.updates.signing import KEYS_DIR

if sys.version_info >= (3, 11):
    import tomllib
else:  # JetPack 6 ships Python 3.10
    import tomli as tomllib

SYSTEM_CONFIG = Path("/etc/mpox-screen/config.toml")
MAX_PIXELS = 120_000_000  # a 108 MP phone photo fits
MAX_THREADS = 64  # more than any board has; 100000 would exhaust the process table
TEXT_ENGINES = ("auto", "opencv", "freetype", "hershey")  # device/live/fonts.py; no cv2 import here


def _key(help: str, lo: float | None = None, hi: float | None = None, choices=()) -> dict:
    return {"help": help, "lo": lo, "hi": hi, "choices": tuple(choices)}


# Each key's consumer: `run --help` lists the keys by it
SECTIONS = {
    "model": ("bundle", "backend", "precision", "threads", "providers", "pipeline"),
    "camera": (
        "source",
        "width",
        "height",
        "fps",
        "loop",
        "source_fps",
        "af_mode",
        "af_range",
        "lens_position",
        "max_pixels",
        "stall_timeout",
        "retry_max",
    ),
    "screen": (
        "display",
        "fullscreen",
        "screen_width",
        "screen_height",
        "fb_bpp",
        "font",
        "language",
        "heatmap",
        "heat_floor",
        "heat_alpha",
    ),
    "verdict and its gates": (
        "smoothing",
        "quality_gate",
        "ood_gate",
        "quality_min_focus",
        "quality_min_mean",
        "quality_max_mean",
        "quality_max_dark",
        "quality_max_bright",
        "quality_max_glare",
    ),
    "saved cases": (
        "state_dir",
        "capture_every",
        "button_pin",
        "max_cases",
        "consent_per_case",
        "min_free_mb",
    ),
    "kit": (
        "keys_dir",
        "log_dir",
        "summary_interval",
        "log_max_bytes",
        "log_backups",
        "trace_frames",
        "max_frames",
    ),
}


@dataclass(frozen=True)
class Config:
    bundle: str = field(
        default="", metadata=_key('model bundle folder; "" = $MPOX_BUNDLE or models/DEFAULT')
    )
    language: str = field(
        default="en",
        metadata=_key("language of the screen and of printed results", choices=tuple(LANGUAGES)),
    )
    backend: str = field(default="onnx", metadata=_key("runtime", choices=("onnx", "tflite")))
    precision: str = field(default="int8", metadata=_key("model file", choices=("int8", "fp32")))
    threads: int = field(default=2, metadata=_key("inference threads", 1, MAX_THREADS))
    providers: str = field(
        default="auto",
        metadata=_key(
            "ONNX Runtime providers: auto (TensorRT, then CUDA, then the CPU, whichever it has) "
            "or a comma list of tensorrt, cuda, cpu"
        ),
    )
    source: str = field(
        default="auto",
        metadata=_key(
            "csi://N, v4l2:///dev/videoN, file://clip.mp4, dir://PATH, a glob, demo:// "
            "(generated frames, no camera) or auto"
        ),
    )
    width: int = field(default=640, metadata=_key("capture width (px)", 16, 8192))
    height: int = field(default=480, metadata=_key("capture height (px)", 16, 8192))
    fps: float = field(default=30.0, metadata=_key("frame rate asked of the camera", 1, 240))
    loop: bool = field(default=False, metadata=_key("replay file:// and dir:// sources for ever"))
    source_fps: float = field(
        default=0.0, metadata=_key("pace file:// and dir:// sources (0 = unpaced)", 0, 240)
    )
    af_mode: str = field(
        default="continuous",
        metadata=_key(
            "autofocus (cameras that have it): continuous, auto (one cycle at start and before "
            "each saved case) or manual",
            choices=("continuous", "auto", "manual"),
        ),
    )
    af_range: str = field(
        default="macro",
        metadata=_key("autofocus range: macro for close-ups", choices=("normal", "macro", "full")),
    )
    lens_position: float = field(
        default=6.0, metadata=_key("manual focus in dioptres (1/m): 6 = about 17 cm", 0, 32)
    )
    display: str = field(
        default="auto",
        metadata=_key(
            "auto (fb:///dev/fb0 if present, else sdl://), sdl://, fb:///dev/fbN, window, "
            "file://DIR, file://out.mp4 or null"
        ),
    )
    fullscreen: bool = field(default=False, metadata=_key("window display: fullscreen"))
    screen_width: int = field(
        default=0, metadata=_key("screen width (0 = the device's or the frame's)", 0, 8192)
    )
    screen_height: int = field(
        default=0, metadata=_key("screen height (0 = the device's or the frame's)", 0, 8192)
    )
    fb_bpp: int = field(
        default=0, metadata=_key("framebuffer bits per pixel (0 = from sysfs)", choices=(0, 16, 32))
    )
    pipeline: bool = field(
        default=True,
        metadata=_key("run the model on the next frame while this one is drawn (2 threads)"),
    )
    font: str = field(
        default="auto",
        metadata=_key("text: auto = OpenCV 5's fonts, else DejaVu Sans", choices=TEXT_ENGINES),
    )
    heatmap: bool = field(default=True, metadata=_key("show the Grad-CAM heat-map (key h toggles)"))
    heat_floor: float = field(
        default=0.35, metadata=_key("heat-map drawn only where the map exceeds this", 0, 0.99)
    )
    heat_alpha: float = field(default=0.5, metadata=_key("heat-map opacity at its peak", 0, 1))
    smoothing: int = field(
        default=8, metadata=_key("frames averaged for the verdict (1 = none)", 1, 300)
    )
    log_dir: str = field(
        default="", metadata=_key('timing logs; "" = $LOGS_DIRECTORY (systemd), else ./logs')
    )
    summary_interval: float = field(
        default=10.0, metadata=_key("seconds between timing summaries", 0.5, 86400)
    )
    log_max_bytes: int = field(
        default=1_000_000, metadata=_key("rotate timing.jsonl at this size", 10_000, 10**9)
    )
    log_backups: int = field(default=3, metadata=_key("rotated timing files kept", 0, 100))
    trace_frames: bool = field(
        default=False, metadata=_key("also write one line per frame (benchmarking; wears SD cards)")
    )
    max_frames: int = field(default=0, metadata=_key("stop after N frames (0 = run for ever)", 0))
    max_pixels: int = field(
        default=MAX_PIXELS,
        metadata=_key(
            "dir:// sources: refuse images with more pixels (checked before decoding)", 1
        ),
    )
    quality_gate: bool = field(
        default=True, metadata=_key("no verdict on a blurred, dark, bright or glaring frame")
    )
    ood_gate: bool = field(
        default=True,
        metadata=_key('no verdict on a frame unlike every training photo ("Cannot judge")'),
    )
    quality_min_focus: float = field(
        default=4.0, metadata=_key("quality: least variance of the Laplacian at 224 px", 0, 1e6)
    )
    quality_min_mean: float = field(
        default=40.0, metadata=_key("quality: darkest mean grey level", 0, 255)
    )
    quality_max_mean: float = field(
        default=235.0, metadata=_key("quality: brightest mean grey level", 0, 255)
    )
    quality_max_dark: float = field(
        default=0.5, metadata=_key("quality: largest share of black pixels", 0, 1)
    )
    quality_max_bright: float = field(
        default=0.5, metadata=_key("quality: largest share of white pixels", 0, 1)
    )
    quality_max_glare: float = field(
        default=0.35,
        metadata=_key("quality: largest share of white colourless (glare) pixels", 0, 1),
    )
    keys_dir: str = field(
        default=str(KEYS_DIR),
        metadata=_key("trusted public keys: the screen says whether the bundle is signed"),
    )
    state_dir: str = field(
        default="", metadata=_key("saved cases (default: $STATE_DIRECTORY, else ./state)")
    )
    capture_every: float = field(
        default=0.0, metadata=_key("save a case every N seconds unattended (0 = off)", 0, 86400)
    )
    button_pin: int = field(
        default=0, metadata=_key("GPIO (BCM) pin of a save-case push button (0 = none)", 0, 27)
    )
    max_cases: int = field(
        default=0, metadata=_key("keep at most N cases, deleting the oldest (0 = keep all)", 0)
    )
    consent_per_case: bool = field(
        default=False,
        metadata=_key(
            "a case goes into a training export only with consent recorded (cases consent N)"
        ),
    )
    min_free_mb: int = field(
        default=200, metadata=_key("below this free space (MB) no case is saved", 0, 10**7)
    )
    stall_timeout: float = field(
        default=5.0, metadata=_key("seconds without a frame before the camera is reopened", 0.1, 10)
    )
    retry_max: float = field(
        default=5.0, metadata=_key("longest wait between camera retries (s)", 0.1, 10)
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            _check(f.name, getattr(self, f.name), f.metadata)
        try:
            parse_providers(self.providers)
        except DeviceError as e:
            raise DeviceError(f"config key 'providers': {e}") from None


def flag_type(name: str):
    """argparse `type` for the key's flag: its type and range, the error without the words
    "config key" (no config file is involved)."""

    def parse(text: str):
        try:
            value = coerce(name, text)
            _check(name, value, KEYS[name].metadata)
        except DeviceError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None
        return value

    parse.__name__ = TYPES[name].__name__
    return parse


MAX_TEXT = 4096  # PATH_MAX: no key's text is longer


def _check(name: str, value: Any, meta) -> None:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise DeviceError(f"config key {name!r}: {len(value):,} characters (at most {MAX_TEXT})")
    if isinstance(value, float) and not math.isfinite(value):
        raise DeviceError(f"config key {name!r}: {value} is not a finite number")
    if meta["choices"] and value not in meta["choices"]:
        raise DeviceError(f"config key {name!r}: {value!r} is not one of {list(meta['choices'])}")
    if meta["lo"] is not None and value < meta["lo"]:
        raise DeviceError(f"config key {name!r}: {value} is below {meta['lo']}")
    if meta["hi"] is not None and value > meta["hi"]:
        raise DeviceError(f"config key {name!r}: {value} is above {meta['hi']}")


TYPES = {f.name: type(f.default) for f in fields(Config)}
KEYS = {f.name: f for f in fields(Config)}


def coerce(name: str, value: Any) -> Any:
    """A TOML or command-line value -> the key's type, or a one-line error naming the key."""
    if name not in TYPES:
        known = ", ".join(sorted(TYPES))
        raise DeviceError(f"unknown config key {name!r} (known keys: {known})")
    want = TYPES[name]
    if isinstance(value, str) and want is not str:
        value = _parse_text(name, value, want)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not want:
        raise DeviceError(
            f"config key {name!r}: expected {want.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _parse_text(name: str, text: str, want: type) -> Any:
    if want is bool:
        if text.lower() in ("true", "yes", "on", "1"):
            return True
        if text.lower() in ("false", "no", "off", "0"):
            return False
        raise DeviceError(f"config key {name!r}: expected true or false, got {text!r}")
    try:
        return want(text)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(want, want.__name__)
        raise DeviceError(f"config key {name!r}: {text!r} is not {what}") from None


MAX_CONFIG_BYTES = 1 << 20  # the kit's config is about 4 KB


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise DeviceError(f"config {path}: larger than {MAX_CONFIG_BYTES >> 10} KiB")
        raw = tomllib.loads(data.decode("utf-8"))
    except RecursionError:
        raise DeviceError(f"config {path} is not valid TOML: nested too deeply") from None
    except OSError as e:
        raise DeviceError(f"cannot read config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise DeviceError(f"config {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise DeviceError(f"config {path} is not valid TOML: not UTF-8 text") from None
    return {k: coerce(k, v) for k, v in raw.items()}


def load(path: Path | None, overrides: dict[str, Any]) -> Config:
    """Defaults < the TOML file (given, else /etc/mpox-screen/config.toml if present) < flags."""
    if path is None and SYSTEM_CONFIG.is_file():
        path = SYSTEM_CONFIG
    values = read_toml(path) if path is not None else {}
    values.update({k: coerce(k, v) for k, v in overrides.items()})
    return replace(Config(), **values)


@dataclass(frozen=True)
class ClassifyOptions:
    """`mpox-screen classify`'s options: its flags are made from these fields."""

    paths: list[Path]
    bundle: Path | None = field(
        default=None,
        metadata=option("model bundle folder (default: the kit's, or $MPOX_BUNDLE)"),
    )
    backend: str = field(default="onnx", metadata=option("runtime", choices=("onnx", "tflite")))
    precision: str = field(default="int8", metadata=option("model file", choices=("int8", "fp32")))
    threads: int = field(
        default=2,
        metadata=option(f"inference threads (1..{MAX_THREADS})", type=whole_number(1, MAX_THREADS)),
    )
    providers: str | None = field(
        default=None,
        metadata=option(
            "ONNX Runtime providers: auto or tensorrt, cuda, cpu (default: the config's)"
        ),
    )
    json: bool = field(default=False, metadata=option("one JSON line per image"))
    cam_out: Path | None = field(default=None, metadata=option("write heat-map overlays here"))
    max_pixels: int = field(
        default=MAX_PIXELS,
        metadata=option(
            f"refuse larger images, checked before decoding (default {MAX_PIXELS:,})",
            type=whole_number(1),
        ),
    )
    quality_gate: bool | None = field(
        default=None,
        metadata=option(
            "no verdict on blurred, dark, bright or glaring photos (default: the config's)"
        ),
    )
    ood_gate: bool | None = field(
        default=None,
        metadata=option(
            'no verdict on photos unlike every training photo, "cannot judge" (default: the '
            "config's)"
        ),
    )
    config: Path | None = field(
        default=None,
        metadata=option(
            f"TOML file whose gate settings and language apply, as on the kit's screen (default "
            f"{SYSTEM_CONFIG} if present)"
        ),
    )


def kit_language() -> str:
    """The language configured for this kit (/etc/mpox-screen/config.toml), for the commands
    that do not read the config otherwise (classify, cases); English if it cannot be read."""
    try:
        return load(None, {}).language
    except DeviceError:
        return "en"


def quality_limits(cfg: Config):
    """The quality gate's limits from the config's quality_* keys."""
    from device.core.quality import QualityLimits

    return QualityLimits(
        **{f: getattr(cfg, f"quality_{f}") for f in QualityLimits.__dataclass_fields__}
    )


def log_dir(cfg: Config) -> Path:
    return Path(cfg.log_dir or os.environ.get("LOGS_DIRECTORY", "").split(":")[0] or "logs")


def state_dir(cfg: Config | None = None) -> Path:
    """Saved cases: the config's state_dir, systemd's $STATE_DIRECTORY, else ./state."""
    given = (cfg.state_dir if cfg else "") or os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(given or "state")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def default_toml() -> str:
    """The commented default file `mpox-screen config --print-default` prints."""
    lines = [
        "# mpox-screen daemon settings (TOML). Every key is optional; a flag on the command line",
        "# (--key value) overrides this file. Unknown keys are rejected.",
        "",
    ]
    for f in fields(Config):
        meta = f.metadata
        note = meta["help"]
        if meta["choices"]:
            note += f" ({' | '.join(map(str, meta['choices']))})"
        elif meta["lo"] is not None:
            hi = "" if meta["hi"] is None else f"..{meta['hi']}"
            note += f" [{meta['lo']}{hi}]"
        default = f.default if f.default is not MISSING else None
        lines += [f"# {note}", f"{f.name} = {_toml_value(default)}", ""]
    return "\n".join(lines)
