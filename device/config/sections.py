"""The kit's settings in sections, one dataclass per consumer, each taken whole by it: `[model]`
(the screener), `[source]` (the camera), `[display]` (the screen), `[gates]` (the verdict's gates;
`[gates.quality]` is the quality gate's own `QualityLimits`), `[cases]` (the case recorder) and
`[kit]` (language, keys, logs). A camera or display plug-in's own options live with the plug-in
(`[source.csi]`, `[display.fb]`: registered beside its factory) and reach it through `plugins`.

Every key's flag is its name, or the name it had in the flat layout (`option(..., flag=...)`),
so the command line did not change when the file got sections. `stall_timeout` and `retry_max`
stop at 10 s: the service's watchdog (30 s) must hear from the loop between two camera retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from device import DeviceError
from device.core.images import MAX_PIXELS
from device.core.quality import QualityLimits
from device.core.runtimes.providers import parse as parse_providers
from device.i18n import LANGUAGES
from device.options import option, problem
from device.updates.signing import KEYS_DIR

MAX_THREADS = 64  # more than any board has; 100000 would exhaust the process table
TEXT_ENGINES = ("auto", "opencv", "freetype", "hershey")  # device/live/fonts.py; no cv2 import here


def check(record: Any, where: str) -> None:
    """Every option of a section (or a plug-in's options) in its range: a one-line error that
    names the key as `where.key`."""
    for f in fields(record):
        if "help" in f.metadata:
            wrong = problem(getattr(record, f.name), f.metadata)
            if wrong:
                raise DeviceError(f"config key '{where}.{f.name}': {wrong}")


class Plugins:
    """A section's plug-in options by plug-in name; a plug-in without a table gets its defaults."""

    plugins: dict[str, Any]

    def plugin(self, name: str, cls: type) -> Any:
        found = self.plugins.get(name)
        return found if isinstance(found, cls) else cls()


@dataclass(frozen=True)
class ModelConfig:
    bundle: str = field(
        default="", metadata=option('model bundle folder; "" = $MPOX_BUNDLE or models/DEFAULT')
    )
    backend: str = field(default="onnx", metadata=option("runtime", choices=("onnx", "tflite")))
    precision: str = field(default="int8", metadata=option("model file", choices=("int8", "fp32")))
    threads: int = field(default=2, metadata=option("inference threads", lo=1, hi=MAX_THREADS))
    providers: str = field(
        default="auto",
        metadata=option(
            "ONNX Runtime providers: auto (TensorRT, then CUDA, then the CPU, whichever it has) "
            "or a comma list of tensorrt, cuda, cpu"
        ),
    )
    pipeline: bool = field(
        default=True,
        metadata=option("run the model on the next frame while this one is drawn (2 threads)"),
    )

    def __post_init__(self) -> None:
        check(self, "model")
        try:
            parse_providers(self.providers)
        except DeviceError as e:
            raise DeviceError(f"config key 'model.providers': {e}") from None


@dataclass(frozen=True)
class SourceConfig(Plugins):
    uri: str = field(
        default="auto",
        metadata=option(
            "csi://N, v4l2:///dev/videoN, gst://PIPELINE, file://clip.mp4, dir://PATH, a glob, "
            "demo:// (generated frames, no camera) or auto",
            flag="source",
        ),
    )
    width: int = field(default=640, metadata=option("capture width (px)", lo=16, hi=8192))
    height: int = field(default=480, metadata=option("capture height (px)", lo=16, hi=8192))
    fps: float = field(
        default=30.0, metadata=option("frame rate asked of the camera", lo=1, hi=240)
    )
    loop: bool = field(default=False, metadata=option("replay file:// and dir:// sources for ever"))
    pace_fps: float = field(
        default=0.0,
        metadata=option(
            "pace file:// and dir:// sources (0 = unpaced)", lo=0, hi=240, flag="source_fps"
        ),
    )
    max_pixels: int = field(
        default=MAX_PIXELS,
        metadata=option(
            "dir:// sources: refuse images with more pixels (checked before decoding)", lo=1
        ),
    )
    stall_timeout: float = field(
        default=5.0,
        metadata=option("seconds without a frame before the camera is reopened", lo=0.1, hi=10),
    )
    retry_max: float = field(
        default=5.0, metadata=option("longest wait between camera retries (s)", lo=0.1, hi=10)
    )
    small_size: int = 0  # not a key: the model's side, for a camera's second, small stream
    plugins: dict[str, Any] = field(default_factory=dict)  # [source.NAME] tables

    def __post_init__(self) -> None:
        check(self, "source")


@dataclass(frozen=True)
class DisplayConfig(Plugins):
    uri: str = field(
        default="auto",
        metadata=option(
            "auto (fb:///dev/fb0 if present, else sdl://), sdl://, fb:///dev/fbN, window, "
            "file://DIR, file://out.mp4 or null",
            flag="display",
        ),
    )
    width: int = field(
        default=0,
        metadata=option(
            "screen width (0 = the device's or the frame's)", lo=0, hi=8192, flag="screen_width"
        ),
    )
    height: int = field(
        default=0,
        metadata=option(
            "screen height (0 = the device's or the frame's)", lo=0, hi=8192, flag="screen_height"
        ),
    )
    font: str = field(
        default="auto",
        metadata=option("text: auto = OpenCV 5's fonts, else DejaVu Sans", choices=TEXT_ENGINES),
    )
    heatmap: bool = field(
        default=True, metadata=option("show the Grad-CAM heat-map (key h toggles)")
    )
    heat_floor: float = field(
        default=0.35,
        metadata=option("heat-map drawn only where the map exceeds this", lo=0, hi=0.99),
    )
    heat_alpha: float = field(
        default=0.5, metadata=option("heat-map opacity at its peak", lo=0, hi=1)
    )
    fps: float = 30.0  # not a key: a video file display's rate, the camera's
    plugins: dict[str, Any] = field(default_factory=dict)  # [display.NAME] tables

    def __post_init__(self) -> None:
        check(self, "display")


@dataclass(frozen=True)
class GatesConfig:
    smoothing: int = field(
        default=8, metadata=option("frames averaged for the verdict (1 = none)", lo=1, hi=300)
    )
    quality_gate: bool = field(
        default=True, metadata=option("no verdict on a blurred, dark, bright or glaring frame")
    )
    ood_gate: bool = field(
        default=True,
        metadata=option('no verdict on a frame unlike every training photo ("Cannot judge")'),
    )
    quality: QualityLimits = field(default_factory=QualityLimits)  # [gates.quality]

    def __post_init__(self) -> None:
        check(self, "gates")
        check(self.quality, "gates.quality")


@dataclass(frozen=True)
class CasesConfig:
    state_dir: str = field(
        default="", metadata=option("saved cases (default: $STATE_DIRECTORY, else ./state)")
    )
    capture_every: float = field(
        default=0.0,
        metadata=option("save a case every N seconds unattended (0 = off)", lo=0, hi=86400),
    )
    button_pin: int = field(
        default=0,
        metadata=option("GPIO (BCM) pin of a save-case push button (0 = none)", lo=0, hi=27),
    )
    max_cases: int = field(
        default=0, metadata=option("keep at most N cases, deleting the oldest (0 = keep all)", lo=0)
    )
    consent_per_case: bool = field(
        default=False,
        metadata=option(
            "a case goes into a training export only with consent recorded (cases consent N)"
        ),
    )
    min_free_mb: int = field(
        default=200, metadata=option("below this free space (MB) no case is saved", lo=0, hi=10**7)
    )

    def __post_init__(self) -> None:
        check(self, "cases")


@dataclass(frozen=True)
class KitConfig:
    language: str = field(
        default="en",
        metadata=option("language of the screen and of printed results", choices=tuple(LANGUAGES)),
    )
    keys_dir: str = field(
        default=str(KEYS_DIR),
        metadata=option("trusted public keys: the screen says whether the bundle is signed"),
    )
    log_dir: str = field(
        default="", metadata=option('timing logs; "" = $LOGS_DIRECTORY (systemd), else ./logs')
    )
    summary_interval: float = field(
        default=10.0, metadata=option("seconds between timing summaries", lo=0.5, hi=86400)
    )
    log_max_bytes: int = field(
        default=1_000_000, metadata=option("rotate timing.jsonl at this size", lo=10_000, hi=10**9)
    )
    log_backups: int = field(default=3, metadata=option("rotated timing files kept", lo=0, hi=100))
    trace_frames: bool = field(
        default=False,
        metadata=option("also write one line per frame (benchmarking; wears SD cards)"),
    )
    max_frames: int = field(
        default=0, metadata=option("stop after N frames (0 = run for ever)", lo=0)
    )

    def __post_init__(self) -> None:
        check(self, "kit")


@dataclass(frozen=True)
class Config:
    """The whole file: each consumer gets its section (`cfg.source` to the camera ...)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    gates: GatesConfig = field(default_factory=GatesConfig)
    cases: CasesConfig = field(default_factory=CasesConfig)
    kit: KitConfig = field(default_factory=KitConfig)


# section -> what `run --help` calls its flags' group
TITLES = {
    "model": "model",
    "source": "camera",
    "display": "screen",
    "gates": "verdict and its gates",
    "cases": "saved cases",
    "kit": "kit",
}
