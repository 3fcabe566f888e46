"""Where results go and what they say about the machine.

Every command writes its own JSON document (`--json OUT`) and, unless `--no-save`, merges it as
one section into `benchmarks/results/<board>.json`, then rewrites `<board>.md` from all sections
(each command module renders its own section with `markdown(doc)`). PNGs sit beside them.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from benchmarks import REPO_DIR, RESULTS_DIR, BenchError
from device.live import board

RESULTS_SCHEMA = "mpox-bench/results/1"
ARM_PARTS = {  # /proc/cpuinfo "CPU part" of Arm's cores (implementer 0x41)
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE",
}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return ""


def cpu_model() -> str:
    """lscpu's "Model name": /proc/cpuinfo's model name on x86, the core name on Arm."""
    info = _read("/proc/cpuinfo")
    m = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    if m:
        return m.group(1).strip()
    parts = re.findall(r"^CPU part\s*:\s*(\S+)$", info, re.M)
    if parts:
        names = sorted({ARM_PARTS.get(p.lower(), f"Arm part {p}") for p in parts})
        return " + ".join(names)
    return platform.processor() or platform.machine()


def board_model() -> str:
    """The board's own name where it reports one (Raspberry Pi, Jetson: the device tree)."""
    return board.model() or ""


def slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def board_name() -> str:
    """$MPOX_BENCH_BOARD, else the board model (e.g. raspberry-pi-5-model-b-rev-1-0), else
    architecture, CPU model and core count (e.g. x86-64-intel-xeon-processor-2c)."""
    if os.environ.get("MPOX_BENCH_BOARD"):
        return slug(os.environ["MPOX_BENCH_BOARD"])
    model = board_model()
    if model:
        return slug(model)
    return slug(f"{platform.machine()}-{cpu_model()}-{os.cpu_count()}c")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _mem_total_gb() -> float | None:
    m = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    return round(int(m.group(1)) / 1024**2, 1) if m else None


def machine_info() -> dict:
    os_release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', _read("/etc/os-release"), re.M)).get(
        "PRETTY_NAME"
    )
    return {
        "arch": platform.machine(),
        "cpu": cpu_model(),
        "board": board_model() or None,
        "l4t": board.l4t(),  # a Jetson's release and power mode: a benchmark without them
        "power_mode": board.power_mode(),  # cannot be compared with another
        "cores": os.cpu_count(),
        "memory_gb": _mem_total_gb(),
        "os": os_release,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime"),
        "ai_edge_litert": _version("ai-edge-litert"),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def shown(path) -> str:
    """A path as results show it: relative to the checkout when inside it."""
    p = Path(path).resolve()
    try:
        return p.relative_to(REPO_DIR).as_posix()
    except ValueError:
        return str(path)


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def document(command: str, config: dict, board: str | None = None) -> dict:
    """The frame every command's JSON shares; the command adds `results` (a list of rows)."""
    return {
        "schema": f"mpox-bench/{command}/1",
        "command": command,
        "board": board or board_name(),
        "machine": machine_info(),
        "created": now(),
        "argv": sys.argv[1:],
        "config": config,
        "results": [],
    }


def write_json(path: Path, doc: dict) -> None:
    """Write atomically (a temp file renamed over the target)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """`columns`: (key, header). Floats print with 3 significant decimals, None as a dash."""

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            a = abs(v)
            return (
                f"{v:.3g}"
                if a < 1
                else f"{v:.2f}"
                if a < 10
                else f"{v:.1f}"
                if a < 100
                else f"{v:.0f}"
            )
        return str(v)

    lines = [
        "| " + " | ".join(h for _, h in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines)


def results_paths(results_dir: Path, board: str) -> tuple[Path, Path]:
    return results_dir / f"{board}.json", results_dir / f"{board}.md"


def save_section(doc: dict, results_dir: Path = RESULTS_DIR) -> Path:
    """Merge `doc` into <results_dir>/<board>.json as section `doc["command"]`; rewrite the .md."""
    json_path, md_path = results_paths(Path(results_dir), doc["board"])
    board = {"schema": RESULTS_SCHEMA, "board": doc["board"], "sections": {}}
    if json_path.is_file():
        try:
            board = json.loads(json_path.read_text())
        except ValueError as e:
            raise BenchError(f"{json_path} is not valid JSON ({e}); move it away") from None
    board["machine"] = doc["machine"]
    board.setdefault("sections", {})[doc["command"]] = doc
    write_json(json_path, board)
    md_path.write_text(render_board(board))
    return json_path


def render_board(board: dict) -> str:
    from benchmarks.cli import COMMANDS

    m = board.get("machine", {})
    out = [
        f"# Benchmarks: {board['board']}",
        "",
        f"Measured on: {m.get('board') or m.get('cpu')}, {m.get('arch')}, {m.get('cores')} cores, "
        f"{m.get('memory_gb')} GB, {m.get('os')}, Python {m.get('python')}, "
        f"onnxruntime {m.get('onnxruntime')}, ai-edge-litert {m.get('ai_edge_litert')}.",
    ]
    for name, doc in board.get("sections", {}).items():
        command = name.partition(":")[0]  # "arm64:pipeline": a second section of `arm64`
        module = importlib.import_module(COMMANDS[command][0]) if command in COMMANDS else None
        if module is not None and hasattr(module, "markdown"):
            out += ["", module.markdown(doc)]
    return "\n".join(out) + "\n"


def add_output_arguments(parser, board_help: str = "") -> None:
    """--json, --board, --results-dir, --no-save: shared by every command."""
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write JSON here")
    parser.add_argument(
        "--board",
        default=None,
        help="board name for benchmarks/results/<board>.json "
        + (board_help or "(default: device-tree model, else arch-cpu-cores)"),
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where <board>.json/.md/.png go (default {RESULTS_DIR})",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="only --json; leave benchmarks/results alone"
    )


def finish(doc: dict, args, pngs: dict | None = None) -> list[Path]:
    """Write --json, the board's results section and its PNGs (`pngs`: suffix -> writer(path))."""
    written = []
    if args.json:
        write_json(args.json, doc)
        written.append(args.json)
    if not args.no_save:
        written.append(save_section(doc, args.results_dir))
        written.append(results_paths(args.results_dir, doc["board"])[1])
    for suffix, writer in (pngs or {}).items():
        if args.no_save and not args.json:
            break
        base = args.results_dir / doc["board"] if not args.no_save else args.json.with_suffix("")
        path = Path(f"{base}-{suffix}.png")
        if writer(path):
            written.append(path)
    for p in written:
        print(f"wrote {p}", file=sys.stderr)
    return written
