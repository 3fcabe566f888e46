"""The mpox-train CLI end to end, as a user runs it (subprocesses, real images)."""

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import run_cli

from train_host import checkpoint
from train_host.shift import SHIFTS

pytestmark = pytest.mark.slow
FAST = [
    "--input-size",
    "64",
    "--epochs",
    "2",
    "--batch-size",
    "16",
    "--num-workers",
    "0",
    "--warmup-epochs",
    "1",
]


def run(*args, ok=True):
    return run_cli("train_host.cli", *args, ok=ok, timeout=600)


@pytest.mark.training
def test_cv_then_evaluate(small_msid, tmp_path):
    out = tmp_path / "cv"
    skin8 = small_msid.parent / "skin8"  # a negatives-only collection: a few real photos
    if not skin8.exists():
        for f in sorted((small_msid / "chickenpox").glob("*.png"))[:4]:
            (skin8 / "chickenpox").mkdir(parents=True, exist_ok=True)
            shutil.copy(f, skin8 / "chickenpox" / f.name)
    proc = run(
        "cv", "--data", small_msid, "--folds", "2", "--collection", skin8, "--out", out, *FAST
    )
    assert "grouped 2-fold AUC" in proc.stdout and "per collection (mean over folds)" in proc.stdout
    (r,) = json.loads((out / "collection_shift.json").read_text())
    assert r["folds"] == 2 and r["collections"]["skin8"]["as_is"]["n"] == 2 * 4
    assert (out / "collection_shift.png").stat().st_size > 0
    summary = json.loads((out / "cv.json").read_text())
    assert summary["folds"] == 2 and summary["grouped"] is True
    assert len(summary["auc_per_fold"]) == 2
    assert 0.0 <= summary["auc_mean"] <= 1.0
    assert summary["pooled"]["n"] == 48
    for name in (
        "cv_roc_pooled.png",
        "cv_folds.png",
        "cv_report.md",
        "fold1/best.pt",
        "fold2/report.md",
    ):
        assert (out / name).stat().st_size > 0
    held = [json.loads((out / f"fold{i}" / "split.json").read_text()) for i in (1, 2)]
    assert set(held[0]["test"]).isdisjoint(held[1]["test"])

    ev = tmp_path / "eval"
    proc = run(
        "evaluate",
        "--checkpoint",
        out / "fold1" / "best.pt",
        "--data",
        small_msid,
        "--split",
        out / "fold1" / "split.json",
        "--subset",
        "test",
        "--out",
        ev,
    )
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["folder"]["screening"]["n"] == len(held[0]["test"])
    assert (ev / "roc.png").stat().st_size > 0 and "AUC" in proc.stdout


@pytest.mark.training
def test_cv_folds_in_parallel_runs_and_a_teacher_per_fold(small_msid, tmp_path):
    """`--only-fold` lets one process per core take a fold; the summary waits for all of them.
    `cv --teacher` takes the teacher's cv folder and distils fold i from teacher fold i only."""
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    common = ["--data", small_msid, "--folds", "2", *FAST]
    proc = run("cv", *common, "--epochs", "1", "--only-fold", "2", "--out", teacher)
    assert "summary comes when all are done" in proc.stdout
    assert (teacher / "fold2/best.pt").is_file() and not (teacher / "fold1").exists()
    assert not (teacher / "cv.json").exists()
    run("cv", *common, "--epochs", "1", "--only-fold", "1", "--out", teacher)
    assert json.loads((teacher / "cv.json").read_text())["folds"] == 2

    proc = run("cv", *common, "--teacher", teacher, "--out", student)
    assert "grouped 2-fold AUC" in proc.stdout
    for i in (1, 2):
        cfg = checkpoint.read(student / f"fold{i}" / "best.pt")["config"]
        assert cfg["teacher"] == [str(teacher / f"fold{i}" / "best.pt")]

    shift = tmp_path / "shift"
    proc = run("shift-test", "--data", small_msid, "--cv", teacher, "--cv", student, "--out", shift)
    assert "student vs teacher: shift" in proc.stdout
    result = json.loads((shift / "shift_cv.json").read_text())
    for name in ("teacher", "student"):
        r = result["runs"][name]
        assert sorted(r["folds"]) == ["1", "2"] and r["n"] == 48  # every image once
        assert r["folds"]["1"]["n"] + r["folds"]["2"]["n"] == 48
        assert set(r["auc"]) == {"clean", *SHIFTS}
    folds = {n: result["runs"][n]["folds"] for n in ("teacher", "student")}
    diff = [
        folds["student"][k]["mean_shift_auc"] - folds["teacher"][k]["mean_shift_auc"] for k in "12"
    ]
    assert result["paired"]["student"]["mean_shift_auc"] == pytest.approx(sum(diff) / 2)
    assert (shift / "shift_cv.png").stat().st_size > 0
    assert "| student | 1,2 | 48 |" in (shift / "shift_cv.md").read_text()
    cached = student / "fold1" / "shift_test.json"  # finished folds are not scored again
    stamp = cached.stat().st_mtime_ns
    run("shift-test", "--data", small_msid, "--cv", student, "--out", tmp_path / "again")
    assert cached.stat().st_mtime_ns == stamp
    again = json.loads((tmp_path / "again" / "shift_cv.json").read_text())
    assert again["runs"]["student"]["folds"] == result["runs"]["student"]["folds"]

    for args, message in (
        (["--seed", "1"], "teacher fold 1 .* held out other images"),
        (["--teacher", teacher / "fold1" / "best.pt"], "takes the teacher's cv folder"),
        (["--only-fold", "3"], "fold numbers 1..2"),
    ):
        bad = ["--teacher", teacher, *args] if args[0] != "--teacher" else args
        proc = run("cv", *common, *bad, "--out", tmp_path / "bad", ok=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert re.search(message, proc.stderr), proc.stderr


def test_models_lists_params_and_macs():
    rows = json.loads(run("models", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["micrompoxnet"]["input_size"] == 128
    assert by_name["mobilenet_v2"]["macs"] > 250e6


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--data", "/nonexistent", "--out", "x"], "data folder not found"),
        (["fit", "--model", "alexnet9000", "--out", "x"], "unknown model"),
        (["fit", "--epochs", "0", "--out", "x"], "--epochs must be at least 1"),
        (["evaluate", "--checkpoint", "missing.pt", "--out", "x"], "checkpoint not found"),
        (["fit", "--optimizer", "adam", "--out", "x"], "'adam' is not one of"),
        (["cv", "--folds", "1", "--limit-per-class", "3", "--out", "x"], "k-fold needs"),
        (["shift-test", "--out", "x"], "--checkpoint CKPT ... or --cv CV_DIR"),
    ],
)
def test_bad_input_gets_one_line_error(args, message, msid, tmp_path):
    proc = run(*args, ok=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1


def test_torchrun_two_processes_gloo(small_msid, tmp_path):
    """DistributedDataParallel on CPU with gloo, 4-class task, no code changes."""
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "train_host.cli",
            "fit",
            "--data",
            small_msid,
            "--task",
            "multiclass",
            "--out",
            out,
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import torch

    ckpt = torch.load(out / "best.pt", weights_only=True)
    assert ckpt["trained_on"]["world_size"] == 2
    assert ckpt["class_names"] == ["chickenpox", "measles", "mpox", "normal"]
    assert (out / "confusion_multiclass.png").stat().st_size > 0
    assert len((out / "history.jsonl").read_text().splitlines()) == 2  # one writer, not two


def test_calibrate_writes_a_new_checkpoint_and_refuses_a_calibrated_one(msid, tmp_path):
    """The checkpoint calibrate reads is never rewritten: a second run would otherwise fold a
    second temperature into the head and lose the first from the record."""
    from conftest import MODELS, one_line_error

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("checkpoint.pt", "split.json", "config.json"):
        shutil.copy(MODELS / "micrompoxnet-binary" / name, run_dir / name)
    before = (run_dir / "checkpoint.pt").read_bytes()
    proc = run("calibrate", "--data", msid, "--checkpoint", run_dir / "checkpoint.pt")
    assert "temperature" in proc.stdout
    assert (run_dir / "checkpoint.pt").read_bytes() == before
    new = tmp_path / "run-cal" / "checkpoint.pt"
    ckpt = checkpoint.torchfile.load(new, "calibrated")
    assert (
        ckpt["temperature"] > 0 and ckpt["threshold"]["chosen_on"] == "kit-framed validation crops"
    )
    assert (new.parent / "split.json").is_file() and (new.parent / "metrics.json").is_file()
    again = run("calibrate", "--data", msid, "--checkpoint", new, ok=False)
    assert "is calibrated already" in one_line_error(again)
    same = run("calibrate", "--checkpoint", run_dir / "checkpoint.pt", "--out", run_dir, ok=False)
    assert "the checkpoint's own folder" in one_line_error(same)
