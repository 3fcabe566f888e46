"""`mpox-bench arm64 --pipeline`: the kit's whole frame on the emulated Cortex-A72 and A76, in
guest instructions per stage (counts, not time: the board's terms without a board).

The installed kit's daemon runs in the root under the counting plugin (`insn_frame.py`): a
recorded 640x480 source made from real photos, the quality gate, preprocessing, the model with
its in-graph CAM, the reading and decision, the canvas, the heat-map overlay, the text, an
800x480 RGB565 framebuffer (a plain file) and the timing log, serial and on one thread, a lap mark
after every stage. Reported per CPU and runtime: each stage's instructions per frame, frame /
inference (target <= 1.25) and the heat-map overlay's share of the frame (target <= 5 %); and
start-up as systemd starts the kit (`insn_startup.py`): the instructions from the Python
process's first one to READY=1 and to the first frame screened, beside a bare `import numpy, cv2,
onnxruntime`. Its own section (`arm64:pipeline`) beside the model counts, and a stacked-bar PNG.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks import BenchError
from benchmarks.arm64_root import GUEST_BENCH, Root
from benchmarks.insn_frame import STAGES
from benchmarks.insn_plugin import counted

TARGETS = {"frame_over_inference": 1.25, "cam_share": 0.05}
SIZE = (640, 480)
FB = "/tmp/mpox-bench-fb0"


def record(root: Root, images: list[Path]) -> str:
    """The photos as a recorded 640x480 source in the root (centre crop to 4:3, JPEG): what a
    camera's frames look like to the kit. Its dir:// URI as the guest sees it."""
    folder = root.path / GUEST_BENCH.lstrip("/") / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jpg"):
        old.unlink()
    for i, path in enumerate(images):
        image = cv2.imread(str(path))
        if image is None:
            raise BenchError(f"{path}: not an image")
        h, w = image.shape[:2]
        scale = min(w / SIZE[0], h / SIZE[1])
        cw, ch = int(SIZE[0] * scale), int(SIZE[1] * scale)
        y, x = (h - ch) // 2, (w - cw) // 2
        frame = cv2.resize(image[y : y + ch, x : x + cw], SIZE, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"frame{i:03d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return f"dir://{GUEST_BENCH}/frames"


def record_camera(root: Root, images: list[Path], small: int) -> str:
    """The same frames as a CSI camera gives them (`insn_frame.py --camera`): raw BGR, and the
    small stream its ISP or VIC scales for the model, scaled here, outside the count."""
    from device.live.sources.picam import lores_size

    folder = root.path / GUEST_BENCH.lstrip("/") / "camera"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.npy"):
        old.unlink()
    frames = root.path / GUEST_BENCH.lstrip("/") / "frames"
    for jpeg in sorted(frames.glob("*.jpg")):
        main = cv2.imread(str(jpeg))
        lores = cv2.resize(main, lores_size(*SIZE, small), interpolation=cv2.INTER_AREA)
        np.save(folder / f"{jpeg.stem}.main.npy", main)
        np.save(folder / f"{jpeg.stem}.small.npy", lores)
    return f"dir://{GUEST_BENCH}/camera"


def count_frame(
    root: Root, source: str, camera: bool, cpu: str, backend: str, frames: int, warmup: int
):
    """One configuration: each stage's instructions per frame, from the plugin's laps;
    `camera`: `source` holds a CSI camera's raw frames (`record_camera`), not a recording."""
    fb = root.path / FB.lstrip("/")
    fb.parent.mkdir(parents=True, exist_ok=True)
    fb.write_bytes(b"")
    args = [source, "--fb", FB, "--backend", backend, "--precision", "int8"]
    args += ["--frames", str(frames), "--warmup", str(warmup)] + (["--camera"] if camera else [])
    t0 = time.perf_counter()
    text = counted(root, cpu, "benchmarks.insn_frame", args, timeout=3600)
    row = summarise(text, cpu, backend, frames, time.perf_counter() - t0)
    return {"source": "csi camera" if camera else "recording", **row}


def summarise(text: str, cpu: str, backend: str, frames: int, seconds: float) -> dict:
    """The plugin's log -> per-stage millions of instructions per frame and the two ratios."""
    per = dict.fromkeys(STAGES, 0)
    for tag, n in re.findall(r"^lap (\d+) insns (\d+)$", text, re.M):
        per[STAGES[int(tag)]] += int(n)
    region = re.search(r"^region 0 insns (\d+)$", text, re.M)
    if region is None or not per["inference"]:
        raise BenchError(f"{cpu} {backend}: the plugin counted no frame")
    frame = int(region.group(1)) / frames
    stages = {s: round(n / frames / 1e6, 2) for s, n in per.items()}
    return {
        "cpu": cpu,
        "backend": backend,
        "precision": "int8",
        "frames": frames,
        "stages_m": stages,
        "frame_m": round(frame / 1e6, 2),
        "frame_over_inference": round(frame / (per["inference"] / frames), 3),
        "cam_share": round(per["cam"] / frames / frame, 4),
        "count_s": round(seconds, 1),
    }


def count_startup(root: Root, source: str, cpu: str) -> dict:
    """Instructions to READY and to the first frame, against the bare imports (ONNX, int8: the
    kit's defaults)."""
    marks = {}
    for args in (["--bare"], [source, "--fb", FB]):
        text = counted(root, cpu, "benchmarks.insn_startup", args, timeout=3600)
        marks |= {int(t): int(n) for t, n in re.findall(r"^at (\d+) insns (\d+)$", text, re.M)}
    if set(marks) != {0, 1, 2}:
        raise BenchError(f"{cpu}: start-up marks missing ({sorted(marks)})")
    bare, ready, first = marks[0], marks[1], marks[2]
    return {
        "cpu": cpu,
        "bare_import_m": round(bare / 1e6, 1),
        "ready_m": round(ready / 1e6, 1),
        "first_frame_m": round(first / 1e6, 1),
        "ready_over_bare": round(ready / bare, 2),
    }


def measure(root: Root, images: list[Path], cpus, backends, frames: int, warmup: int) -> dict:
    source = record(root, images)
    sources = [(source, False), (record_camera(root, images, small=128), True)]
    rows, startup = [], []
    for cpu in cpus:
        with root.mounted(cpu):
            startup.append(count_startup(root, source, cpu))
            for (where, camera), backend in [(s, b) for s in sources for b in backends]:
                row = count_frame(root, where, camera, cpu, backend, frames, warmup)
                rows.append(row)
                print(
                    f"{cpu} {backend} int8, {row['source']}: {row['frame_m']} M instructions per "
                    f"frame, frame / "
                    f"inference {row['frame_over_inference']}, heat-map {row['cam_share']:.1%} "
                    f"({row['count_s']} s)",
                    file=sys.stderr,
                )
    return {"rows": rows, "startup": startup, "targets": TARGETS, "photos": len(images)}


def markdown(section: dict) -> str:
    rows = section["rows"]
    head = (
        "| stage | " + " | ".join(f"{r['cpu']} {r['backend']}, {r['source']}" for r in rows) + " |"
    )
    out = [
        "## The whole frame in emulated arm64 instructions (`mpox-bench arm64 --pipeline`)",
        "",
        f"Millions of guest instructions per frame (int8; {rows[0]['frames']} frames after "
        f"warm-up, from {section['photos']} photos as a recorded 640x480 source (JPEG, no small "
        "stream: a USB camera's case) and as a CSI camera gives them (raw, with the ISP's 170x128 "
        "small stream); an 800x480 RGB565 framebuffer; serial, one thread):",
        "",
        head,
        "|---" * (len(rows) + 1) + "|",
    ]
    for stage in STAGES:
        out.append(f"| {stage} | " + " | ".join(f"{r['stages_m'][stage]:.2f}" for r in rows) + " |")
    out.append("| **frame** | " + " | ".join(f"**{r['frame_m']:.1f}**" for r in rows) + " |")
    for key, what, fmt in (
        ("frame_over_inference", "frame / inference (<= 1.25)", "{:.2f}"),
        ("cam_share", "heat-map share of the frame (<= 5 %)", "{:.1%}"),
    ):
        cells = []
        for r in rows:
            met = r[key] <= TARGETS[key]
            cells.append(fmt.format(r[key]) + ("" if met else " (missed)"))
        out.append(f"| {what} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Start-up as systemd starts the kit (`mpox-screen run`, ONNX int8; millions of "
        "instructions from the Python process's first):",
        "",
        "| CPU | bare `import numpy, cv2, onnxruntime` | to READY=1 | to the first frame shown | "
        "READY / bare imports |",
        "|---|---|---|---|---|",
    ]
    for r in section.get("startup", []):
        out.append(
            f"| {r['cpu']} | {r['bare_import_m']:.0f} | {r['ready_m']:.0f} | "
            f"{r['first_frame_m']:.0f} | {r['ready_over_bare']:.2f} |"
        )
    return "\n".join(out)


def plot(section: dict, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = section["rows"]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(rows) + 2.2))
    labels = [f"{r['cpu']} {r['backend']} int8\n{r['source']}" for r in rows]
    left = [0.0] * len(rows)
    colours = plt.get_cmap("tab20").colors
    for i, stage in enumerate(STAGES):
        widths = [r["stages_m"][stage] for r in rows]
        ax.barh(labels, widths, left=left, label=stage, color=colours[i % len(colours)])
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set(xlabel="M guest instructions per frame", title="The kit's frame, stage by stage")
    ax.legend(ncol=6, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
