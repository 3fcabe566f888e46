"""`mpox-bench tradeoff`: each run placed at its architecture's emulated instruction count and its
AUC on a collection it never trained on (its worst, or the one named), with the interval."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import run_cli


def _shift_row(run: str, aucs: dict[str, float | None], trained: tuple[str, ...] = ()) -> dict:
    return {
        "model": run,
        "kit_framing": {"auc": 0.9, "auc_ci95": [0.85, 0.93]},
        "collections": {
            name: {
                "trained_on": name in trained,
                "kit_mpox_vs": {
                    "auc": math.nan if auc is None else auc,
                    "auc_ci95": [math.nan, math.nan] if auc is None else [auc - 0.05, auc + 0.04],
                },
            }
            for name, auc in aucs.items()
        },
    }


def _counts(**m: float) -> dict:
    rows = [
        {"architecture": a, "cpu": cpu, "backend": "onnx", "precision": "int8",
         "instructions_per_inference": n * 1e6 * (2 if cpu == "cortex-a76" else 1)}
        for a, n in m.items() for cpu in ("cortex-a72", "cortex-a76")
    ]  # fmt: skip
    return {"sections": {"arm64": {"results": rows}}}


@pytest.fixture
def inputs(tmp_path):
    counts, shift = tmp_path / "counts.json", tmp_path / "shift.json"
    counts.write_text(json.dumps(_counts(big=160.0, small=60.0, unused=120.0)))
    shift.write_text(json.dumps([
        _shift_row("default", {"a": 0.82, "b": 0.86, "c": None}),
        _shift_row("student", {"a": 0.78, "b": 0.70}, trained=("b",)),
    ]))  # fmt: skip
    return counts, shift


def test_each_run_at_its_cost_and_its_worst_left_out_collection(inputs, tmp_path):
    counts, shift = inputs
    out = tmp_path / "res" / "tradeoff"
    run_cli("benchmarks.cli", "tradeoff", "--counts", counts, "--shift", shift,
            "--row", "default=big", "--row", "student=small", "--out", out)  # fmt: skip
    doc = json.loads(out.with_suffix(".json").read_text())
    got = {p["run"]: (p["m_insns"], p["collection"], p["auc"]) for p in doc["points"]}
    # default: worst of a and b (c has no AUC); student: b was trained on, so a
    assert got == {"default": (160.0, "a", 0.82), "student": (60.0, "a", 0.78)}
    assert doc["without_accuracy"] == ["unused"]
    assert out.with_suffix(".png").stat().st_size > 5000
    table = out.with_suffix(".md").read_text()
    assert "| student | small | 60.0 | a | 0.78 (0.73-0.82) | 0.90 (0.85-0.93) |" in table


def test_a_named_collection_and_the_one_line_errors(inputs, tmp_path):
    counts, shift = inputs
    base = ("benchmarks.cli", "tradeoff", "--counts", counts, "--shift", shift, "--out",
            tmp_path / "t")  # fmt: skip
    run_cli(*base, "--row", "default=big", "--collection", "b")
    assert json.loads((tmp_path / "t.json").read_text())["points"][0]["auc"] == 0.86
    for row, extra, message in [
        ("student=small", ("--collection", "b"), "student: trained on b"),
        ("nobody=big", (), "no row 'nobody'"),
        ("default=huge", (), "no cortex-a72 count of 'huge'"),
    ]:
        proc = run_cli(*base, "--row", row, *extra, ok=False)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and message in err and len(err.splitlines()) == 1, err
