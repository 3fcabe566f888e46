"""Which model files a benchmark times, found without torch (so this runs on a board too).

`micrompoxnet` (the architecture of the bundle given with --bundle, default the kit's default
bundle) means that bundle's files. Any other registry name means a baseline exported with random
weights by `mpox-bench export-baselines` into the baselines folder, as a small bundle of its own
(`<name>/` at the registry's default input size, `<name>-<size>/` for `name@size`). Parameters
and MACs come from the baseline's manifest, and for the kit's bundle from `profiles.json` in the
baselines folder (both written on the host, where torch counts them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks import REPO_DIR, BenchError
from device.core.bundle import Bundle, default_bundle_dir, load_bundle

DEFAULT_BASELINES = ("mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet18")
PROFILES = "profiles.json"


def default_cache() -> Path:
    """$MPOX_BENCH_CACHE, else runs/bench-cache in the checkout (gitignored)."""
    return Path(os.environ.get("MPOX_BENCH_CACHE", REPO_DIR / "runs" / "bench-cache"))


def default_baselines_dir() -> Path:
    return default_cache() / "baselines"


@dataclass(frozen=True)
class ModelEntry:
    name: str  # as asked for: "micrompoxnet", "mobilenet_v2", "resnet18@160"
    architecture: str
    source: str  # "bundle micrompoxnet-binary" or "baseline (random weights)"
    bundle: Bundle
    input_size: int
    params: int | None
    macs: int | None


def parse_name(text: str) -> tuple[str, int | None]:
    name, _, size = text.partition("@")
    try:
        return name, int(size) if size else None
    except ValueError:
        raise BenchError(f"bad model name {text!r} (NAME or NAME@SIZE)") from None


def baseline_dir(baselines: Path, name: str, size: int | None) -> Path:
    return baselines / (name if size is None else f"{name}-{size}")


def bundle_key(bundle: Bundle) -> str:
    return f"{bundle.manifest.name}@{bundle.manifest.version}"


def read_profiles(baselines: Path) -> dict:
    path = baselines / PROFILES
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def kit_bundle(bundle_dir: Path | None) -> Bundle:
    return load_bundle(bundle_dir or default_bundle_dir())


def resolve(
    names: list[str], bundle: Bundle, baselines: Path
) -> tuple[list[ModelEntry], list[str]]:
    """(entries found, names missing from the baselines folder)."""
    arch = bundle.manifest.architecture
    profiles = read_profiles(baselines)
    found, missing = [], []
    for text in names:
        name, size = parse_name(text)
        if name == arch and size in (None, bundle.input["size"]):
            prof = profiles.get(bundle_key(bundle), {})
            found.append(
                ModelEntry(
                    text,
                    arch,
                    f"bundle {bundle.root.name}",
                    bundle,
                    int(bundle.input["size"]),
                    prof.get("params"),
                    prof.get("macs"),
                )
            )
            continue
        folder = baseline_dir(baselines, name, size)
        if not (folder / "manifest.json").is_file():
            missing.append(text)
            continue
        b = load_bundle(folder)
        bench = b.manifest.document.get("bench", {})
        found.append(
            ModelEntry(
                text,
                name,
                "baseline (random weights)",
                b,
                int(b.input["size"]),
                bench.get("params"),
                bench.get("macs"),
            )
        )
    return found, missing
