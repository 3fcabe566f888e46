"""`mpox-screen timing-report FILE`: a table of a run's stage times and a PNG of them over time."""

from __future__ import annotations

import json
from pathlib import Path

from device import DeviceError
from device.live.timing import STAGES, WAIT

COLUMNS = (*STAGES, "frame")
REQUIRED = {"uptime_s", "frames", "fps", "stages_ms"}  # what a summary line always has


def read_rows(path: Path) -> list[dict]:
    """Summary lines of timing.jsonl; rotated copies (timing.jsonl.1 ...) are read first."""
    rotated = [f for f in path.parent.glob(path.name + ".*") if f.suffix[1:].isdigit()]
    files = [*sorted(rotated, key=lambda p: -int(p.suffix[1:])), path]
    if path.is_dir():
        raise DeviceError(f"{path} is a folder: name its timing.jsonl ({path / 'timing.jsonl'})")
    if not path.is_file():
        raise DeviceError(f"{path}: no such file")
    rows, bad = [], 0
    for f in files:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")  # damaged bytes: a bad line
        except OSError as e:
            raise DeviceError(f"{f}: cannot read it ({e.strerror})") from None
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(row, dict) and row.keys() >= REQUIRED:
                rows.append(row)
            else:
                bad += 1
    if not rows:
        raise DeviceError(f"{path}: no timing summaries in it ({bad} unreadable lines)")
    return rows


def table(rows: list[dict]) -> str:
    """p50 of the per-summary p50s and the worst max per stage, plus the run's totals."""
    frames = sum(r["frames"] for r in rows)
    lines = [
        f"{len(rows)} summaries, {frames} frames, "
        f"fps median {_median([r['fps'] for r in rows if r['frames']]):.1f}, "
        f"dropped {rows[-1]['dropped']}, malformed {rows[-1]['malformed']}, "
        f"peak RSS {max(r.get('peak_rss_mb', 0) for r in rows):.0f} MB",
        f"{'stage':<11}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'share':>8}",
    ]
    frame_p50 = _median(_stage(rows, "frame", "p50")) or 1.0
    for name in COLUMNS:
        p50 = _median(_stage(rows, name, "p50"))
        p95 = _median(_stage(rows, name, "p95"))
        worst = max(_stage(rows, name, "max"), default=0.0)
        share = f"{100 * p50 / frame_p50:7.1f}%" if name not in ("frame", WAIT) else "wait"
        lines.append(f"{name:<11}{p50:9.2f}{p95:9.2f}{worst:9.2f}{share:>8}")
    temps = [r["cpu_temp_c"] for r in rows if r.get("cpu_temp_c") is not None]
    if temps:
        lines.append(f"CPU temperature {min(temps):.1f}..{max(temps):.1f} C")
    flags = sorted({k for r in rows for k, v in (r.get("throttled") or {}).items() if v})
    if flags:
        lines.append("throttling flags seen: " + ", ".join(flags))
    return "\n".join(lines)


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["uptime_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    ax.stackplot(t, *[[_p50(r, s) for r in rows] for s in STAGES], labels=STAGES, alpha=0.8)
    marker = "o" if len(rows) < 3 else None  # one summary is a point, not an empty chart
    ax.plot(t, [_p50(r, "frame") for r in rows], "k-", marker=marker, label="frame (end to end)")
    ax.set(xlabel="time since start (s)", ylabel="p50 per summary (ms)", title="mpox-screen stages")
    ax.legend(loc="upper left", fontsize=8, ncol=4)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def add_arguments(p) -> None:
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--png", type=Path, default=None, help="plot here (default: FILE.png)")


def run(args) -> int:
    return report(args.file, args.png)


def report(path: Path, png: Path | None = None) -> int:
    out = png or path.with_suffix(".png")
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise DeviceError(f"--png {out}: name the plot .png (or .svg, .pdf)")
    rows = read_rows(path)
    print(table(rows))
    if not out.parent.is_dir():
        raise DeviceError(f"--png {out}: folder {out.parent} does not exist")
    try:
        plot(rows, out)
    except OSError as e:
        raise DeviceError(f"--png {out}: cannot write it ({e.strerror})") from None
    print(f"plot: {out}")
    return 0


def _p50(row: dict, stage: str) -> float:
    s = row["stages_ms"].get(stage)
    return s["p50"] if s else 0.0


def _stage(rows: list[dict], stage: str, key: str) -> list[float]:
    return [r["stages_ms"][stage][key] for r in rows if r["stages_ms"].get(stage)]


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0
