"""`mpox-bench startup`: process start to READY=1 (model warm, first screen shown), read from a
NOTIFY_SOCKET this benchmark owns, against a bare `python -c "import numpy, cv2, onnxruntime"` in
the same run. Target: <= 2x the bare import."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import BenchError, report

BARE = [sys.executable, "-c", "import numpy, cv2, onnxruntime"]
TARGET = 2.0


def add_arguments(p) -> None:
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--bundle", default=None, help="bundle folder (default: models/DEFAULT)")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--precision", default="int8")
    report.add_output_arguments(p)


def bare_import_s() -> float:
    t0 = time.perf_counter()
    subprocess.run(BARE, check=True, capture_output=True)
    return time.perf_counter() - t0


def time_to_ready_s(args, tmp: Path) -> float:
    sock_path = tmp / "notify.sock"
    sock_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(60)
        cmd = [sys.executable, "-m", "device.cli", "run", "--source", "demo://"]
        cmd += ["--display", "null", "--log-dir", str(tmp), "--backend", args.backend]
        cmd += ["--precision", args.precision] + (["--bundle", args.bundle] if args.bundle else [])
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path)}
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while True:
                try:
                    message = sock.recv(4096).decode()
                except TimeoutError:
                    raise BenchError("no READY=1 within 60 s") from None
                if "READY=1" in message.splitlines():
                    ready = time.perf_counter() - t0
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return ready


def run(args) -> int:
    doc = report.document(
        "startup",
        {"repeats": args.repeats, "baseline": " ".join(BARE[1:]), "target": TARGET},
        args.board,
    )
    with tempfile.TemporaryDirectory(prefix="mpox-startup-") as tmp:
        bare_import_s()  # page cache warm for both
        pairs = [(bare_import_s(), time_to_ready_s(args, Path(tmp))) for _ in range(args.repeats)]
    bare = statistics.median(b for b, _ in pairs)
    ready = statistics.median(r for _, r in pairs)
    doc["results"].append(
        {
            "backend": args.backend,
            "precision": args.precision,
            "bare_import_s": round(bare, 3),
            "ready_s": round(ready, 3),
            "ratio": round(ready / bare, 2),
            "met": ready / bare <= TARGET,
        }
    )
    report.finish(doc, args)
    print(markdown(doc))
    return 0


def markdown(doc: dict) -> str:
    cols = [
        ("backend", "backend"),
        ("precision", "precision"),
        ("bare_import_s", "bare import s"),
        ("ready_s", "start to READY s"),
        ("ratio", "ratio"),
        ("met", f"<= {TARGET}x"),
    ]
    return "\n".join(
        [
            "## Start-up (`mpox-bench startup`)",
            "",
            f"{doc['created']}; medians of {doc['config']['repeats']} alternating runs; READY = "
            "model warm and the first screen shown, as systemd sees it.",
            "",
            report.markdown_table(doc["results"], cols),
        ]
    )
