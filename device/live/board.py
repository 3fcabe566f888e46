"""What the board says about itself: CPU temperature, firmware throttling flags, memory.

Read from sysfs/procfs only (no vcgencmd process per summary); absent files give None, so the same
code runs on a Pi, a Jetson and a laptop.
"""

from __future__ import annotations

import resource
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
