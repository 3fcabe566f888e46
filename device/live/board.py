"""What the board says about itself: its model, a Jetson's L4T release and power mode, CPU
temperature, firmware throttling flags, memory.

Read from files only (no vcgencmd or nvpmodel process per summary); absent files give None, so the
same code runs on a Pi, a Jetson and a laptop. A Jetson's power mode (nvpmodel) changes what a
benchmark measures several-fold, so every timing summary and `mpox-bench` result carries it.
"""

from __future__ import annotations

import re
import resource
from functools import cache
from pathlib import Path

THERMAL = Path("/sys/class/thermal")
# Raspberry Pi firmware flags (the bits `vcgencmd get_throttled` prints)
PI_THROTTLED = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
FLAGS = {
    0: "under_voltage",
    1: "freq_capped",
    2: "throttled",
    3: "soft_temp_limit",
    16: "under_voltage_occurred",
    17: "freq_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temp_limit_occurred",
}


ROOT = Path("/")
MODEL = "proc/device-tree/model"  # Raspberry Pi and Jetson boards name themselves here
TEGRA_RELEASE = "etc/nv_tegra_release"  # "# R36 (release), REVISION: 3.0, GCID: ..."
NVPMODEL_STATUS = "var/lib/nvpmodel/status"  # "pmode:0002 fmode:..." (the mode in force)
NVPMODEL_CONF = "etc/nvpmodel.conf"  # "< POWER_MODEL ID=2 NAME=15W >" per mode


def facts(root: Path = ROOT) -> dict[str, str | None]:
    """The board's model, and on a Jetson its L4T release and power mode (read again each time:
    `nvpmodel -m` changes it while the kit runs; model and release are read once)."""
    return {"model": model(root), "l4t": l4t(root), "power_mode": power_mode(root)}


@cache
def model(root: Path = ROOT) -> str | None:
    raw = _read(root / MODEL)
    return raw.rstrip("\x00").strip() or None if raw else None


@cache
def l4t(root: Path = ROOT) -> str | None:
    """The L4T release (JetPack 6 is 36.x, JetPack 5 is 35.x), e.g. "36.3.0"."""
    m = re.search(
        r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", _read(root / TEGRA_RELEASE) or ""
    )
    if m is None:
        return None
    revision = m.group(2) if m.group(2).count(".") else f"{m.group(2)}.0"
    return f"{m.group(1)}.{revision}"


def power_mode(root: Path = ROOT) -> str | None:
    """The nvpmodel mode in force, by name where the board's table names it ("15W (mode 2)")."""
    m = re.search(r"pmode:\s*(\d+)", _read(root / NVPMODEL_STATUS) or "")
    if m is None:
        return None
    mode = int(m.group(1))
    names = dict(
        (int(i), n)
        for i, n in re.findall(
            r"POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)", _read(root / NVPMODEL_CONF) or ""
        )
    )
    return f"{names[mode]} (mode {mode})" if mode in names else f"mode {mode}"


def cpu_temperature(thermal: Path = THERMAL) -> float | None:
    """Degrees C of the CPU zone (the first zone typed cpu/soc, else zone 0)."""
    zones = sorted(thermal.glob("thermal_zone*"))
    for zone in zones:
        kind = _read(zone / "type") or ""
        if any(k in kind.lower() for k in ("cpu", "soc", "x86_pkg")):
            return _millidegrees(zone)
    return _millidegrees(zones[0]) if zones else None


def _millidegrees(zone: Path) -> float | None:
    raw = _read(zone / "temp")
    try:
        return round(int(raw) / 1000.0, 1) if raw else None
    except ValueError:
        return None


def throttled(path: Path = PI_THROTTLED) -> dict[str, bool] | None:
    raw = _read(path)
    if raw is None:
        return None
    try:
        bits = int(raw, 16)
    except ValueError:
        return None
    return {name: bool(bits >> bit & 1) for bit, name in FLAGS.items()}


def memory_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    status = _read(Path("/proc/self/status")) or ""
    rss = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS")), 0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    # two clocks (VmRSS now, ru_maxrss sampled by the kernel): the peak is never below now
    return round(rss / 1024, 1), round(max(peak, rss) / 1024, 1)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
