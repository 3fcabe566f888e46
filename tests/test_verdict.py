"""The screening result's one owner (device.core.verdict): gates, window and threshold in one
place."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from device.core.ood import OodModel
from device.core.verdict import Decider, Reading, Status

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["other", "mpox"]
OOD = OodModel(sizes=(2,), precisions=(np.eye(2),), refs=np.ones(1), limit=3.0)


def reading(p: float, score: float = 1.0, skin: float = 0.9) -> Reading:
    cams = np.stack([np.full((4, 4), -1.0), np.arange(16.0).reshape(4, 4)])
    return Reading(np.array([1 - p, p]), cams, 5.0, score, skin)


def decider(window: int = 1, ood_gate: bool = True, threshold: float = 0.4) -> Decider:
    return Decider(CLASSES, "mpox", threshold, OOD, window, ood_gate)


def test_the_threshold_is_inclusive_and_the_cam_is_the_decided_class():
    d = decider(threshold=0.4)
    at = d.judge(reading(0.4, score=1.0))
    assert at.status is Status.OK and at.positive and at.label == "mpox"
    assert at.cam.max() == 1.0 and at.cam[0, 0] == 0.0  # mpox's map, scaled to [0, 1]
    below = d.judge(reading(0.39, score=1.0))
    assert not below.positive and below.label == "other"
    assert below.text == "Mpox unlikely" and at.text == "Mpox likely"


def test_the_window_decides_on_the_mean_and_a_gap_empties_it():
    d = decider(window=3)
    assert d.judge(reading(0.9)).positive
    v = d.judge(reading(0.0))  # mean 0.45 >= 0.4: still likely, on the window's mean
    assert v.positive and v.positive_prob == pytest.approx(0.45) and v.frame_prob == 0.0
    d.poor_quality("blur", {"sharpness": 1.0})  # no verdict on this frame: the window restarts
    assert not d.judge(reading(0.0)).positive
    d.judge(reading(0.9))
    refused = d.judge(reading(0.9, score=9.0))  # cannot judge: restarts the window too
    assert refused.status is Status.CANNOT_JUDGE and not refused.positive
    assert d.judge(reading(0.1)).positive_prob == pytest.approx(0.1)


def test_both_gates_refuse_and_their_finding_stays_when_the_gate_is_off():
    on, off = decider(), decider(ood_gate=False)
    for r in (reading(0.9, score=3.1), reading(0.9, skin=0.01)):
        refused = on.judge(r)
        assert refused.status is Status.CANNOT_JUDGE and not refused.judgeable
        assert refused.saved_prob is None and refused.frame_prob == 0.9
        kept = off.judge(r)
        assert kept.status is Status.OK and kept.positive and not kept.judgeable
    assert on.judge(reading(0.9, score=3.0)).judgeable  # the limit itself is judged
    poor = on.poor_quality("dark", {"brightness": 10.0})
    assert poor.status is Status.POOR_QUALITY and poor.text == "More light"
    assert poor.quality == {"brightness": 10.0} and poor.saved_prob is None


def test_a_multiclass_verdict_below_the_threshold_names_the_likeliest_other():
    d = Decider(["chickenpox", "measles", "mpox", "normal"], "mpox", 0.3, None)
    probs = np.array([0.1, 0.45, 0.25, 0.2])
    v = d.judge(Reading(probs, np.zeros((4, 2, 2)), 1.0))
    assert v.label == "measles" and not v.positive
    assert [c for c, _ in v.ranked] == ["measles", "mpox", "normal", "chickenpox"]
    assert v.as_dict()["prob"] == 0.25 and v.as_dict()["label"] == "measles"


def test_the_threshold_is_compared_in_one_place_on_the_device():
    """No module but device/core/verdict.py compares anything with a threshold: the screen, a saved
    case and classify cannot decide differently."""
    found = []
    for path in sorted((REPO / "device").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                names = {n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "")
                         for n in ast.walk(node)}  # fmt: skip
                if "threshold" in names:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found and all(f.startswith("device/core/verdict.py:") for f in found), found
