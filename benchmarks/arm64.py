"""`mpox-bench arm64`: the kit on emulated aarch64 (docs/design.md, docs/benchmarks.md).

1. Smoke: a Debian 12 (bookworm, default) or 13 (trixie, `--suite trixie`: Raspberry Pi OS
   since October 2025, Python 3.13) arm64 root (mmdebstrap) run through qemu-user + binfmt with a
   fake Cortex-A72 /proc/cpuinfo; the kit is installed from this checkout by its own installer
   (`systemd/install.sh`: venv with the `device` and `tflite` extras, bundle, config, unit);
   `platform.machine()` must say aarch64; the installed `mpox-screen classify --json` on a few
   images must give the labels x86 gives.
2. Instruction counts: the dynamic `qemu-aarch64` (which takes plugins; the static one refuses)
   runs each model file with `insn_count.c`, built against qemu-plugin.h from Debian's qemu source
   package (fetched with a private apt configuration: the host's apt sources stay untouched),
   counting only the marked region around the inference loop (`insn_guest.py`), with `-cpu
   cortex-a72` / `cortex-a76`, one thread, no address-space randomisation, PYTHONHASHSEED=0.

Counts measure work, not time (no cache or pipeline model): compare them as ratios. Emulated
timing is meaningless, so nothing here is timed except the steps themselves.

The root, the plugin header and the built plugin are cached (default /var/cache/mpox-bench when
root, else runs/bench-cache/arm64; $MPOX_ARM64_CACHE): a rerun only re-copies the checkout and
re-installs it (seconds). Mounts (proc, sysfs, the fake cpuinfo) are always undone on exit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from benchmarks import REPO_DIR, BenchError, report
from benchmarks.arm64_root import (
    GUEST_BENCH,
    GUEST_SRC,
    GUEST_VENV,
    SUITES,
    Root,
    check_host,
    default_arm64_cache,
    ensure_binfmt,
    locked,
    sh,
    terminate_as_exit,
)
from benchmarks.insn_plugin import build_plugin, count, stage_qemu
from benchmarks.models import default_baselines_dir, kit_bundle, resolve

log = logging.getLogger(__name__)


def default_images(data: Path, per_class: int = 2) -> list[Path]:
    from device.core.images import EXTENSIONS

    if not data.is_dir():
        raise BenchError(f"no images: {data} missing (pass --images or set MPOX_DATA)")
    out = []
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        out += sorted(f for f in d.iterdir() if f.suffix.lower() in EXTENSIONS)[:per_class]
    if not out:
        raise BenchError(f"no images in class folders under {data}")
    return out


def classify_json(cmd: list[str], runner) -> list[dict]:
    proc = runner(cmd)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def smoke(root: Root, images: list[Path], backends=("onnx", "tflite")) -> dict:
    """Assumes `root.mounted(...)`; returns the smoke's summary (raises on a failure)."""
    machine = root.guest(
        [f"{GUEST_VENV}/bin/python", "-c", "import platform; print(platform.machine())"]
    ).stdout.strip()
    if machine != "aarch64":
        raise BenchError(f"the guest reports {machine!r}, not aarch64: binfmt is not in use")
    dest = root.path / GUEST_BENCH.lstrip("/") / "images"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    names = []
    for i, img in enumerate(images):
        name = f"{i:03d}-{img.name}"
        shutil.copy(img, dest / name)
        names.append(name)
    checks = []
    for backend in backends:
        opts = ["classify", "--json", "--threads", "1", "--backend", backend, "--precision", "int8"]
        opts += ["--no-quality-gate", "--no-ood-gate"]  # a label for every image: runtimes compared
        t0 = time.perf_counter()
        arm = classify_json(
            ["/usr/local/bin/mpox-screen", *opts, f"{GUEST_BENCH}/images"], root.guest
        )
        arm_s = time.perf_counter() - t0
        x86 = classify_json(
            [sys.executable, "-m", "device.cli", *opts, str(dest)],
            lambda c: sh(c, timeout=600),
        )
        a = {Path(r["path"]).name: r for r in arm}
        x = {Path(r["path"]).name: r for r in x86}
        if sorted(a) != sorted(names) or sorted(x) != sorted(names):
            raise BenchError(
                f"classify {backend}: expected {len(names)} results, "
                f"got {len(a)} on arm64 and {len(x)} on x86"
            )
        differ = [n for n in names if a[n]["label"] != x[n]["label"]]
        checks.append(
            {
                "backend": backend,
                "precision": "int8",
                "images": len(names),
                "labels_equal": not differ,
                "differ": differ,
                "labels": [a[n]["label"] for n in names],
                "max_abs_prob_diff": round(max(abs(a[n]["prob"] - x[n]["prob"]) for n in names), 6),
                "arm64_classify_s": round(arm_s, 1),
            }
        )
        log.info(
            "classify %s int8 on arm64: %d images, labels equal to x86: %s",
            backend,
            len(names),
            not differ,
        )
    return {"machine": machine, "classify": checks}


# ---------------------------------------------------------------------------------------------
# the command


def add_arguments(p) -> None:
    p.add_argument("--models", default="micrompoxnet,mobilenet_v2", help="default: %(default)s")
    p.add_argument("--backends", default="onnx,tflite", help="counted, and classified in the smoke")
    p.add_argument("--precisions", default="fp32,int8")
    p.add_argument("--cpus", default="cortex-a72,cortex-a76", help="default: %(default)s")
    p.add_argument("--runs", type=int, default=2, help="inferences in the counted region")
    p.add_argument("--smoke", action="store_true", help="only install + classify; no counting")
    p.add_argument(
        "--pipeline",
        action="store_true",
        help="count the kit's whole frame stage by stage (int8; --cpus, --backends) instead of "
        "the models: its own results section",
    )
    p.add_argument("--frames", type=int, default=4, help="--pipeline: frames counted")
    p.add_argument("--no-smoke", action="store_true", help="skip the classify check")
    p.add_argument("--images", type=Path, nargs="+", default=None, help="photos for the smoke")
    p.add_argument("--bundle", type=Path, default=None)
    p.add_argument("--baselines", type=Path, default=None)
    p.add_argument("--cache", type=Path, default=None, help="root and plugin cache")
    p.add_argument("--mirror", default=None, help="Debian mirror (default: the host's)")
    p.add_argument(
        "--suite", choices=list(SUITES), default="bookworm", help="guest Debian: %(choices)s"
    )
    report.add_output_arguments(p, "(default: qemu-aarch64)")


def _guest_path(root: Root, host_file: Path) -> str:
    """Where a model file is seen in the guest: bundles of the checkout under /opt/src, other
    files copied to /opt/bench/models."""
    try:
        rel = host_file.resolve().relative_to(REPO_DIR)
        if (root.path / GUEST_SRC.lstrip("/") / rel).is_file():
            return f"{GUEST_SRC}/{rel.as_posix()}"
    except ValueError:
        pass
    digest = hashlib.sha256(str(host_file.resolve()).encode()).hexdigest()[:8]
    dest = root.path / GUEST_BENCH.lstrip("/") / "models" / digest / host_file.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(host_file, dest)
    return f"{GUEST_BENCH}/models/{digest}/{host_file.name}"


def count_rows(root: Root, entries, backends, precisions, cpus, runs: int) -> list[dict]:
    rows = []
    for cpu in cpus:
        with root.mounted(cpu):
            for e in entries:
                for backend in backends:
                    for precision in precisions:
                        try:
                            f = e.bundle.select(backend, precision)
                        except Exception:  # a bundle without that file
                            continue
                        t0 = time.perf_counter()
                        n = count(root, _guest_path(root, f.path), cpu, runs)
                        row = {
                            "model": e.name,
                            "architecture": e.architecture,
                            "input_size": e.input_size,
                            "backend": backend,
                            "precision": precision,
                            "cpu": cpu,
                            "instructions_per_inference": round(n / runs),
                            "region_instructions": n,
                            "runs": runs,
                            "macs": e.macs,
                            "instructions_per_mac": round(n / runs / e.macs, 3) if e.macs else None,
                            "file": report.shown(f.path),
                            "count_s": round(time.perf_counter() - t0, 1),
                        }
                        rows.append(row)
                        print(
                            f"{cpu} {e.name} {backend} {precision}: "
                            f"{row['instructions_per_inference'] / 1e6:.1f} M instructions "
                            f"per inference ({row['count_s']} s)",
                            file=sys.stderr,
                        )
    return rows


def targets(rows: list[dict], arch: str, reference: str = "mobilenet_v2") -> list[dict]:
    """On Cortex-A72, for the bundle's model and its registry variants (names starting with its
    architecture): int8 / reference int8 <= 0.5, and int8 / its own fp32 <= 0.5."""
    get = {(r["model"], r["backend"], r["precision"], r["cpu"]): r for r in rows}
    models = dict.fromkeys(r["model"] for r in rows if r["architecture"].startswith(arch))
    out = []
    for model in models:
        for backend in sorted({r["backend"] for r in rows}):
            m8 = get.get((model, backend, "int8", "cortex-a72"))
            r8 = get.get((reference, backend, "int8", "cortex-a72"))
            m32 = get.get((model, backend, "fp32", "cortex-a72"))
            for what, num, den in (
                (f"{model} int8 / {reference}@224 int8", m8, r8),
                (f"{model} int8 / {model} fp32", m8, m32),
            ):
                if num and den:
                    ratio = num["instructions_per_inference"] / den["instructions_per_inference"]
                    out.append(
                        {
                            "model": model,
                            "what": what,
                            "backend": backend,
                            "cpu": "cortex-a72",
                            "ratio": round(ratio, 3),
                            "target": 0.5,
                            "met": ratio <= 0.5,
                        }
                    )
    return out


def run(args) -> int:
    check_host()
    cache = args.cache or default_arm64_cache()
    root = Root(cache, args.mirror, args.suite)
    doc = report.document(
        "arm64:pipeline" if args.pipeline else "arm64",
        {
            "suite": f"{SUITES[root.suite]} ({root.suite}) arm64, mmdebstrap --variant=extract",
            "mirror": root.mirror,
            "qemu": sh(["dpkg-query", "-W", "-f", "${Version}", "qemu-user"]).stdout.strip(),
            "counting": "TCG plugin insn_count.c: guest instructions in the marked region "
            "around the inference loop; dynamic qemu-aarch64 -cpu CPU, setarch -R, "
            "PYTHONHASHSEED=0, one thread",
            "runs": args.runs,
        },
        args.board or "qemu-aarch64",
    )
    t_start = time.perf_counter()
    with terminate_as_exit(), locked(cache):
        ensure_binfmt()
        t0 = time.perf_counter()
        built = root.build()
        doc["root"] = {
            "path": str(root.path),
            "built_now": built,
            "build_s": round(time.perf_counter() - t0, 1),
        }
        with root.mounted("cortex-a72"):
            doc["root"].update(root.install())
            if not (args.no_smoke or args.pipeline):
                from benchmarks.accuracy import default_data

                images = args.images or default_images(default_data())
                doc["smoke"] = smoke(root, images, args.backends.split(","))
        if args.pipeline:
            return _pipeline(root, cache, args, doc, t_start)
        if not args.smoke:
            bundle = kit_bundle(args.bundle)
            baselines = args.baselines or default_baselines_dir()
            names = [n for n in args.models.split(",") if n]
            entries, missing = resolve(names, bundle, baselines)
            if missing:
                from benchmarks.latency import can_export, export_missing

                if not can_export():
                    raise BenchError(f"{', '.join(missing)} not in {baselines}: export first")
                export_missing(missing, baselines, args.bundle)
                entries, _ = resolve(names, bundle, baselines)
            stage_qemu(root, build_plugin(cache, root.mirror))
            doc["results"] = count_rows(
                root,
                entries,
                args.backends.split(","),
                args.precisions.split(","),
                args.cpus.split(","),
                args.runs,
            )
            arch = bundle.manifest.architecture
            doc["targets"] = targets(doc["results"], arch)
    doc["total_s"] = round(time.perf_counter() - t_start, 1)
    report.finish(doc, args)
    failed = [c for c in doc.get("smoke", {}).get("classify", []) if not c["labels_equal"]]
    if failed:
        print(
            f"mpox-bench arm64: labels differ from x86 for {failed[0]['differ']}", file=sys.stderr
        )
        return 1
    return 0


def _pipeline(root: Root, cache: Path, args, doc: dict, t_start: float) -> int:
    """`--pipeline`: the whole frame, stage by stage, as the section `arm64:pipeline`."""
    from benchmarks import arm64_frame
    from benchmarks.accuracy import default_data

    stage_qemu(root, build_plugin(cache, root.mirror))
    images = args.images or default_images(default_data())
    doc["pipeline"] = arm64_frame.measure(
        root, images, args.cpus.split(","), args.backends.split(","), args.frames, warmup=2
    )
    doc["total_s"] = round(time.perf_counter() - t_start, 1)
    pngs = {"frame": lambda path: arm64_frame.plot(doc["pipeline"], path)}
    report.finish(doc, args, pngs)
    return 0


def markdown(doc: dict) -> str:
    if doc["command"] == "arm64:pipeline":
        from benchmarks import arm64_frame

        return arm64_frame.markdown(doc["pipeline"])
    out = ["## Emulated arm64 (`mpox-bench arm64`)", ""]
    r = doc.get("root", {})
    out.append(
        f"{doc['created']}; {doc['config']['suite']}, qemu {doc['config']['qemu']}; root "
        f"{'built' if r.get('built_now') else 'cached'} ({r.get('build_s')} s), install "
        f"{r.get('install_s')} s ({'full' if r.get('full_install') else 'project only'}); "
        f"whole command {doc.get('total_s')} s."
    )
    for c in doc.get("smoke", {}).get("classify", []):
        out += [
            "",
            f"Smoke: `mpox-screen classify --backend {c['backend']} --precision int8` on "
            f"{c['images']} images under emulated aarch64: labels equal to x86: "
            f"**{c['labels_equal']}** (largest P difference {c['max_abs_prob_diff']}).",
        ]
    if doc.get("results"):
        rows = [
            {
                **x,
                "minst": round(x["instructions_per_inference"] / 1e6, 1),
                "macs_m": round(x["macs"] / 1e6) if x.get("macs") else None,
            }
            for x in sorted(
                doc["results"], key=lambda x: (x["cpu"], x["backend"], x["precision"], x["model"])
            )
        ]
        out += ["", "Guest instructions per inference (millions; counts, not time):", ""]
        out.append(
            report.markdown_table(
                rows,
                [
                    ("cpu", "CPU"),
                    ("model", "model"),
                    ("input_size", "px"),
                    ("backend", "backend"),
                    ("precision", "precision"),
                    ("minst", "M instructions"),
                    ("macs_m", "MACs M"),
                    ("instructions_per_mac", "instructions / MAC"),
                ],
            )
        )
    if doc.get("targets"):
        out += ["", "Targets on Cortex-A72 (instruction-count ratios, <= 0.5):", ""]
        out.append(
            report.markdown_table(
                doc["targets"],
                [("what", "ratio of"), ("backend", "backend"), ("ratio", "ratio"), ("met", "met")],
            )
        )
    return "\n".join(out)
