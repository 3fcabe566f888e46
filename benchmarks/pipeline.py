"""`mpox-bench pipeline`: the daemon's own frame loop on generated 640x480 frames, null display.

Each configuration runs `mpox-screen run` as a child process (peak RSS from the kernel) with
`--trace-frames`, and the per-frame stage times are read back from its frames.jsonl. Reported:
fps, each stage's share of the frame, end-to-end / inference, (CAM + overlay) / frame, and peak
RSS, against the issue's targets (<= 1.25, <= 5 %, <= 150 MB for int8 ONNX). The first
backend/precision also runs in every `--languages` with every `--fonts` text engine: the screen's
text must not undo the targets in any language.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import BenchError, plots, report
from benchmarks.proc import run_measured
from device.live.timing import STAGES

TARGETS = {"frame_over_inference": 1.25, "cam_share": 0.05, "peak_rss_mb": 150.0}


def add_arguments(p) -> None:
    p.add_argument("--bundle", default=None, help="bundle folder (default: models/DEFAULT)")
    p.add_argument("--backends", default="onnx,tflite")
    p.add_argument("--precisions", default="int8,fp32")
    p.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    p.add_argument("--frames", type=int, default=300, help="frames per configuration")
    p.add_argument("--size", default="640x480", help="generated frame size WxH")
    p.add_argument("--no-heatmap-baseline", action="store_true", help="skip the heat-map-off run")
    p.add_argument("--languages", default="en,fr,pt,sw", help="screen languages (first backend)")
    p.add_argument("--fonts", default="auto,freetype", help="text engines (first backend)")
    report.add_output_arguments(p)


def daemon_command(args, backend, precision, heatmap, log_dir: Path, pipeline=True, text=None):
    """`text`: (language, text engine), default English with the best engine."""
    w, h = args.size.split("x")
    cmd = [sys.executable, "-m", "device.cli", "run", "--source", "demo://", "--display", "null"]
    cmd += ["--width", w, "--height", h, "--fps", "240", "--max-frames", str(args.frames)]
    cmd += ["--backend", backend, "--precision", precision, "--threads", str(args.threads)]
    cmd += ["--trace-frames", "--summary-interval", "3600", "--log-dir", str(log_dir)]
    cmd += ["--heatmap" if heatmap else "--no-heatmap"]
    cmd += ["--pipeline" if pipeline else "--no-pipeline"]
    cmd += ["--no-ood-gate"]  # the drawn demo skin is "Cannot judge": time the whole verdict path
    language, font = text or ("en", "auto")
    cmd += ["--language", language, "--font", font]
    return cmd + (["--bundle", args.bundle] if args.bundle else [])


def measure(args, backend, precision, heatmap, pipeline=True, text=None) -> dict:
    with tempfile.TemporaryDirectory(prefix="mpox-pipeline-") as tmp:
        cmd = daemon_command(args, backend, precision, heatmap, Path(tmp), pipeline, text)
        run = run_measured(cmd, 900)
        if run.returncode != 0:
            raise BenchError(f"daemon failed ({backend}/{precision}): {run.stderr.strip()[-400:]}")
        frames = [json.loads(x) for x in (Path(tmp) / "frames.jsonl").read_text().splitlines()]
    frames = frames[min(10, len(frames) // 10) :]  # warm-up frames out
    p50 = {s: float(np.median([f[s] for f in frames])) for s in (*STAGES, "frame")}
    wall = frames[-1]["t"] - frames[0]["t"]
    work = ("preprocess", "inference", "cam", "render", "display")
    return {
        "backend": backend,
        "precision": precision,
        "heatmap": heatmap,
        "pipeline": pipeline,
        "language": (text or ("en", "auto"))[0],
        "font": (text or ("en", "auto"))[1],
        "frames": len(frames),
        "fps": round((len(frames) - 1) / wall, 2) if wall > 0 else None,
        **{f"{s}_p50_ms": round(v, 3) for s, v in p50.items()},
        "frame_over_inference": round(p50["frame"] / p50["inference"], 3),
        "cam_share": round(p50["cam"] / p50["frame"], 4),
        "share": {s: round(p50[s] / sum(p50[k] for k in work), 4) for s in work},
        "peak_rss_mb": round(run.peak_rss_mb, 1),
    }


def run(args) -> int:
    config = {
        "frames": args.frames,
        "size": args.size,
        "threads": args.threads,
        "source": "demo:// (generated), display null",
        "frame": "p50 of the time between two frames shown (pipelined: the stages overlap); "
        "serial rows: preprocess + inference + cam + render + display",
        "targets": TARGETS,
    }
    doc = report.document("pipeline", config, args.board)
    combos = [(b, p) for b in args.backends.split(",") for p in args.precisions.split(",")]
    for i, (backend, precision) in enumerate(combos):
        runs = [(True, True, None), (True, False, None)]  # (heat-map, pipelined, text)
        runs += [] if args.no_heatmap_baseline else [(False, True, None)]
        if i == 0:
            texts = [(lang, f) for f in args.fonts.split(",") for lang in args.languages.split(",")]
            runs += [(True, True, t) for t in texts if t != ("en", "auto")]
        for heatmap, pipelined, text in runs:
            row = measure(args, backend, precision, heatmap, pipelined, text)
            print(json.dumps(row), file=sys.stderr)
            doc["results"].append(row)
    report.finish(doc, args, {"pipeline": lambda path: stage_plot(doc["results"], path)})
    print(markdown(doc))
    return 0


def markdown(doc: dict) -> str:
    cols = [
        ("backend", "backend"),
        ("precision", "precision"),
        ("heatmap", "heat-map"),
        ("pipeline", "pipelined"),
        ("language", "language"),
        ("font", "text engine"),
        ("fps", "fps"),
        ("preprocess_p50_ms", "preprocess ms"),
        ("inference_p50_ms", "inference ms"),
        ("cam_p50_ms", "CAM+overlay ms"),
        ("render_p50_ms", "render ms"),
        ("frame_p50_ms", "frame ms"),
        ("frame_over_inference", "frame / inference"),
        ("cam_share", "CAM share"),
        ("peak_rss_mb", "peak RSS MB"),
    ]
    c = doc["config"]
    return "\n".join(
        [
            "## Frame loop (`mpox-bench pipeline`)",
            "",
            f"{doc['created']}; {c['frames']} generated {c['size']} frames per row, null display, "
            f"{c['threads']} inference thread(s); p50 per stage. Targets: frame / inference <= "
            f"{TARGETS['frame_over_inference']}, CAM share <= {TARGETS['cam_share']:.0%}, "
            f"peak RSS <= {TARGETS['peak_rss_mb']:.0f} MB (int8 ONNX).",
            "",
            report.markdown_table(doc["results"], cols),
        ]
    )


def stage_plot(rows: list[dict], path: Path) -> bool:
    plt = plots.pyplot()
    if plt is None or not rows:
        return False
    work = ("preprocess", "inference", "cam", "render", "display")
    labels = [
        f"{r['backend']} {r['precision']}"
        + ("" if r["heatmap"] else "\nno heat-map")
        + ("" if r.get("pipeline", True) else "\nserial")
        + (
            ""
            if (r.get("language"), r.get("font")) in ((None, None), ("en", "auto"))
            else f"\n{r['language']} {r['font']}"
        )
        for r in rows
    ]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 4.5), dpi=100)
    bottom = np.zeros(len(rows))
    for stage in work:
        values = np.array([r[f"{stage}_p50_ms"] for r in rows])
        ax.bar(labels, values, bottom=bottom, label=stage)
        bottom += values
    ax.set(ylabel="p50 ms per frame", title="mpox-screen frame loop: where a frame's time goes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
