"""`mpox-bench`: every subcommand on a tiny configuration with its JSON schema checked, the helpers
it is built from, and the arm64 instruction counter (identical counts for identical runs, more
for a larger model). The arm64 tests need root and the emulation tools: without them they skip,
except under CI=true, where .ci/run installs the tools and a missing one is a failure."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import MODELS, require, run_cli

from benchmarks import BenchError, report
from benchmarks.accuracy import roc_auc
from benchmarks.plots import pareto_front
from benchmarks.proc import run_measured
from benchmarks.stats import summarise

BUNDLE = MODELS / "micrompoxnet-binary"
LATENCY_KEYS = {
    "model": str,
    "backend": str,
    "precision": str,
    "threads": int,
    "p50_ms": float,
    "p95_ms": float,
    "p99_ms": float,
    "rss_mb": float,
    "size_mb": float,
    "input_size": int,
}


def bench(*args, ok=True, timeout=900):
    return run_cli("benchmarks.cli", *args, ok=ok, timeout=timeout)


def check_frame(doc: dict, command: str) -> None:
    assert doc["schema"] == f"mpox-bench/{command}/1"
    assert doc["command"] == command
    assert isinstance(doc["board"], str) and doc["board"]
    for key in ("arch", "cpu", "cores", "python", "onnxruntime"):
        assert key in doc["machine"]
    assert isinstance(doc["results"], list)


# --- helpers ----------------------------------------------------------------------------------


def test_summary_percentiles():
    s = summarise(list(range(1, 101)))
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p95_ms"] == pytest.approx(95.05)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["min_ms"] == 1 and s["max_ms"] == 100


def test_roc_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + 0.3 * labels, 1)  # many ties
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert roc_auc(scores, np.zeros(300, int)) is None


def test_pareto_front_keeps_only_undominated_points():
    rows = [{"x": 1, "y": 0.8}, {"x": 2, "y": 0.7}, {"x": 3, "y": 0.9}, {"x": 4, "y": 0.9}]
    assert pareto_front(rows, "x", "y") == [rows[0], rows[2]]


def test_peak_rss_is_the_childs_own():
    """VmHWM, not ru_maxrss: Linux carries a big parent's RSS into the child's ru_maxrss."""
    big = np.ones(600 * 2**20 // 8)  # this process: > 600 MB
    code = (
        "import time, numpy as np; a = np.ones(200 * 2**20 // 8); time.sleep(0.3); "
        "print('{\"ok\": 1}')"
    )
    m = run_measured([sys.executable, "-c", code])
    assert m.returncode == 0 and m.last_json() == {"ok": 1}
    assert 200 < m.peak_rss_mb < 400
    assert m.ru_maxrss_mb > 600 > m.peak_rss_mb  # what ru_maxrss would have claimed
    del big


def test_board_file_collects_sections(tmp_path):
    for command in ("latency", "accuracy"):
        doc = report.document(command, {"runs": 1}, board="test-board")
        report.save_section(doc, tmp_path)
    board = json.loads((tmp_path / "test-board.json").read_text())
    assert set(board["sections"]) == {"latency", "accuracy"}
    md = (tmp_path / "test-board.md").read_text()
    assert "## Latency" in md and "## Accuracy" in md


def test_board_name_is_a_slug(monkeypatch):
    monkeypatch.delenv("MPOX_BENCH_BOARD", raising=False)
    name = report.board_name()
    assert name and name == report.slug(name)
    monkeypatch.setenv("MPOX_BENCH_BOARD", "Raspberry Pi 5 (8 GB)")
    assert report.board_name() == "raspberry-pi-5-8-gb"


def test_cli_lists_commands_and_refuses_bad_options(tmp_path):
    out = bench("--help").stdout
    for name in ("latency", "accuracy", "arm64", "export-baselines"):
        assert name in out
    proc = bench("latency", "--backends", "caffe", "--no-save", ok=False)
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = bench("accuracy", str(tmp_path / "nowhere"), "--no-save", ok=False)
    assert proc.returncode == 2 and "not a folder" in proc.stderr


# --- latency and export-baselines -----------------------------------------------------------


def test_latency_bundle_only_without_exporting(tmp_path):
    """What a board does with no baselines folder: the bundle's files, a note for the rest."""
    out = tmp_path / "lat.json"
    proc = bench(
        "latency",
        "--models", "micrompoxnet,mobilenet_v2",
        "--backends", "onnx,tflite",
        "--precisions", "int8",
        "--threads", "1",
        "--runs", "5",
        "--warmup", "1",
        "--no-export",
        "--baselines", tmp_path / "none",
        "--json", out,
        "--results-dir", tmp_path / "results",
        "--board", "tiny",
    )  # fmt: skip
    doc = json.loads(out.read_text())
    check_frame(doc, "latency")
    assert [(r["model"], r["backend"]) for r in doc["results"]] == [
        ("micrompoxnet", "onnx"),
        ("micrompoxnet", "tflite"),
    ]
    for r in doc["results"]:
        for key, kind in LATENCY_KEYS.items():
            assert isinstance(r[key], kind), key
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
        assert 10 < r["rss_mb"] < 2000
        assert "params" in r and "macs" in r
    assert "mobilenet_v2" in " ".join(doc["notes"]) and "mobilenet_v2" in proc.stderr
    assert (tmp_path / "results" / "tiny.json").is_file()
    assert "## Latency" in (tmp_path / "results" / "tiny.md").read_text()


@pytest.mark.slow
def test_latency_exports_a_baseline_and_counts_macs(tmp_path):
    baselines = tmp_path / "baselines"
    out = tmp_path / "lat.json"
    bench(
        "latency",
        "--models", "micrompoxnet,mobilenet_v3_small@64",
        "--backends", "onnx,tflite",
        "--precisions", "fp32,int8",
        "--threads", "1,2",
        "--runs", "3",
        "--warmup", "1",
        "--baselines", baselines,
        "--json", out,
        "--no-save",
    )  # fmt: skip
    doc = json.loads(out.read_text())
    check_frame(doc, "latency")
    assert len(doc["results"]) == 2 * 2 * 2 * 2
    rows = {(r["model"], r["backend"], r["precision"], r["threads"]): r for r in doc["results"]}
    small = rows[("mobilenet_v3_small@64", "onnx", "int8", 1)]
    micro = rows[("micrompoxnet", "onnx", "int8", 1)]
    assert small["input_size"] == 64 and small["source"].startswith("baseline")
    assert micro["params"] == 404922 and micro["macs"] > 400e6  # the bundle, via profiles.json
    assert 0 < small["macs"] < micro["macs"] and small["params"] > micro["params"]
    manifest = json.loads((baselines / "mobilenet_v3_small-64" / "manifest.json").read_text())
    assert len(manifest["files"]) == 4 and manifest["bench"]["macs"] == small["macs"]
    assert (tmp_path / "lat-latency.png").stat().st_size > 10_000
    # every int8 row of the kit's model has its target ratio (there is no MobileNetV2@224 here)
    assert doc["targets"] == []


# --- accuracy ---------------------------------------------------------------------------------


def test_pipeline_measures_the_loop_in_each_language_and_text_engine(tmp_path):
    """The daemon's frame loop, pipelined and serial, and again with French text drawn by each
    engine: one row per run with its stage times, plus the plot."""
    out = tmp_path / "pipeline.json"
    bench(
        "pipeline", "--backends", "onnx", "--precisions", "int8", "--frames", "40",
        "--languages", "en,fr", "--fonts", "auto,freetype", "--no-heatmap-baseline",
        "--json", out, "--no-save",
    )  # fmt: skip
    doc = json.loads(out.read_text())
    check_frame(doc, "pipeline")
    runs = {(r["pipeline"], r["language"], r["font"]) for r in doc["results"]}
    assert runs == {
        (True, "en", "auto"),
        (False, "en", "auto"),
        (True, "fr", "auto"),
        (True, "en", "freetype"),
        (True, "fr", "freetype"),
    }
    for r in doc["results"]:
        assert r["render_p50_ms"] > 0 and r["frame_over_inference"] > 0
    assert (tmp_path / "pipeline-pipeline.png").is_file()


def test_accuracy_on_a_labelled_folder(small_msid, tmp_path):
    out = tmp_path / "acc.json"
    bench(
        "accuracy",
        small_msid,
        "--bundles", BUNDLE,
        "--backends", "onnx,tflite",
        "--precisions", "int8",
        "--json", out,
        "--no-save",
    )  # fmt: skip
    doc = json.loads(out.read_text())
    check_frame(doc, "accuracy")
    assert doc["config"]["images"] == 48
    assert [(r["backend"], r["precision"]) for r in doc["results"]] == [
        ("onnx", "int8"),
        ("tflite", "int8"),
    ]
    for r in doc["results"]:
        assert r["n"] == 48 and r["positives"] == 24
        assert 0.5 < r["auc"] <= 1 and 0 <= r["accuracy"] <= 1
        assert 0 <= r["sensitivity"] <= 1 and 0 <= r["specificity"] <= 1
        assert r["threshold"] == pytest.approx(0.174869, abs=1e-5)
        assert r["p50_ms"] > 0
    assert (tmp_path / "acc-accuracy.png").stat().st_size > 10_000


def test_accuracy_split_part_selects_held_out_images(msid, tmp_path):
    """On the kit's default bundle: its int8 ONNX has 7-bit weights, so it holds on x86 CPUs
    without VNNI too (the older bundles' 8-bit weights saturate there, docs/training.md)."""
    from device.core.bundle import default_bundle_dir

    bundle = default_bundle_dir()
    out = tmp_path / "acc.json"
    bench(
        "accuracy",
        msid,
        "--bundles", bundle,
        "--backends", "onnx",
        "--precisions", "int8",
        "--split", bundle / "split.json",
        "--part", "test",
        "--json", out,
        "--no-save",
    )  # fmt: skip
    (row,) = json.loads(out.read_text())["results"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    test = manifest["metrics"]["test"]
    assert row["n"] == test["n"] == 108 and row["positives"] == test["positives"]
    # the manifest's test numbers are PyTorch's; the int8 file is within the gate of them
    assert row["auc"] == pytest.approx(test["auc"], abs=0.01)
    assert row["sensitivity"] == pytest.approx(test["sensitivity"], abs=0.03)


# --- arm64 ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def arm64_tools():
    from benchmarks import arm64

    try:
        arm64.check_host()
    except BenchError as e:
        require(False, f"arm64 emulation unavailable: {e}")
    return arm64


@pytest.fixture(scope="session")
def arm64_root(arm64_tools):
    """The cached root with this checkout installed, the counting plugin staged."""
    arm64 = arm64_tools
    cache = arm64.default_arm64_cache()
    root = arm64.Root(cache)
    with arm64.locked(cache):
        arm64.ensure_binfmt()
        root.build()
        with root.mounted("cortex-a72"):
            root.install()
        arm64.stage_qemu(root, arm64.build_plugin(cache, root.mirror))
    return root


@pytest.mark.slow
def test_arm64_smoke_and_count_tiny(arm64_tools, msid, tmp_path):
    out = tmp_path / "arm.json"
    images = [sorted((msid / c).glob("*.png"))[0] for c in ("mpox", "normal")]
    bench(
        "arm64",
        "--models", "micrompoxnet",
        "--backends", "onnx",
        "--precisions", "int8",
        "--cpus", "cortex-a72",
        "--runs", "1",
        "--images", *images,
        "--json", out,
        "--no-save",
        timeout=1800,
    )  # fmt: skip
    doc = json.loads(out.read_text())
    check_frame(doc, "arm64")
    smoke = doc["smoke"]
    assert smoke["machine"] == "aarch64"
    (check,) = smoke["classify"]
    assert check["labels_equal"] and check["images"] == len(images)
    (row,) = doc["results"]
    assert (row["model"], row["backend"], row["precision"], row["cpu"]) == (
        "micrompoxnet",
        "onnx",
        "int8",
        "cortex-a72",
    )
    assert isinstance(row["instructions_per_inference"], int)
    assert 20e6 < row["instructions_per_inference"] < 5e9


@pytest.mark.slow
def test_the_whole_frame_counted_stage_by_stage(arm64_tools, msid, tmp_path):
    """`arm64 --pipeline`: the installed kit's daemon on a recorded source under the counting
    plugin; every stage counted back to back, the model's share where the model-only count puts
    it, and its own section and stacked-bar plot."""
    out = tmp_path / "frame.json"
    images = sorted((msid / "mpox").glob("*.png"))[:2]
    bench("arm64", "--pipeline", "--cpus", "cortex-a72", "--backends", "onnx", "--frames", "2",
          "--images", *images, "--json", out, "--no-save", timeout=1800)  # fmt: skip
    doc = json.loads(out.read_text())
    check_frame(doc, "arm64:pipeline")
    row, camera = doc["pipeline"]["rows"]  # the recording, then a CSI camera's raw frames
    assert (row["source"], camera["source"]) == ("recording", "csi camera")
    # the camera's small stream spares the full-frame resize for the model; raw frames no decode
    assert camera["stages_m"]["preprocess"] < row["stages_m"]["preprocess"] / 2
    assert camera["stages_m"]["capture"] < row["stages_m"]["capture"]
    stages = row["stages_m"]
    assert list(stages) == ["capture", "gate", "preprocess", "inference", "reading", "decide",
                            "render", "cam", "text", "display", "timing"]  # fmt: skip
    assert all(stages[s] > 0 for s in stages if s != "cam")  # cam: only on a judged frame
    assert abs(sum(stages.values()) - row["frame_m"]) < 0.05 * row["frame_m"]  # back to back
    assert 100 < stages["inference"] < 250  # the default's 193 M per int8 ONNX inference
    assert (
        1.0
        < row["frame_over_inference"]
        == pytest.approx(row["frame_m"] / stages["inference"], rel=0.01)
    )
    assert tmp_path.joinpath("frame-frame.png").stat().st_size > 5000
    (start,) = doc["pipeline"]["startup"]  # to READY and the first frame, the imports below
    assert 0 < start["bare_import_m"] < start["ready_m"] <= start["first_frame_m"]


@pytest.mark.slow
def test_instruction_counts_repeat_exactly_and_grow_with_the_model(arm64_root, tmp_path):
    import torch

    from benchmarks import arm64
    from train_host.export.onnx_export import export_fp32
    from train_host.models import create_model
    from train_host.models.camgraph import wrap

    files = {}
    for size in (32, 64):  # the same network at 4x the pixels: about 4x the MACs
        torch.manual_seed(0)
        model = create_model("micrompoxnet", 2, size, width=0.25).eval()
        files[size] = tmp_path / f"m{size}.onnx"
        export_fp32(wrap(model, size), size, files[size])
    root = arm64_root
    with arm64.locked(root.cache), root.mounted("cortex-a72"):
        small = arm64._guest_path(root, files[32])
        big = arm64._guest_path(root, files[64])
        first = arm64.count(root, small, "cortex-a72", runs=1)
        again = arm64.count(root, small, "cortex-a72", runs=1)
        larger = arm64.count(root, big, "cortex-a72", runs=1)
    assert first == again
    assert larger > 2 * first


def test_faster_variant_keeps_the_cam_grid_at_a_third_of_the_macs():
    """micrompoxnet_s2 (the issue's "faster variant": a stride-2 stem) against the faithful one."""
    import torch

    from train_host.models import create_model
    from train_host.profile import profile

    faithful, fast = profile("micrompoxnet"), profile("micrompoxnet_s2")
    assert fast["params"] == faithful["params"]
    assert 0.3 < fast["macs"] / faithful["macs"] < 0.4
    model = create_model("micrompoxnet_s2", 2, 128).eval()
    assert model.features(torch.zeros(1, 3, 128, 128)).shape == (1, 256, 4, 4)


def test_a_command_that_runs_past_its_time_is_a_one_line_error():
    """Emulated installs take minutes; on a busy machine one can run out of time: a clear error,
    not a traceback."""
    from benchmarks import BenchError
    from benchmarks.arm64_root import sh

    with pytest.raises(BenchError, match=r"sleep 5 \.\.\. did not finish in 0.2 s"):
        sh(["sleep", "5"], timeout=0.2)
