"""int8 calibration off MSID: a stable share of each other collection calibrates and leaves the
gate set, and the gate holds the kit's decision on the other collections pooled, not only on
the whole gate set."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import MODELS, copy_subset, one_line_error, run_cli

from train_host import UserError
from train_host.data import load_dataset
from train_host.export import gate
from train_host.export.exporter import ExportRequest, gate_set, in_calibration_share
from train_host.export.onnx_export import STRIDE, _Reader


def test_the_share_is_one_in_k_and_stable_wherever_the_collection_lies():
    paths = [Path(f"/a/bites/ant/photo{i}.jpg") for i in range(4000)]
    picked = [p for p in paths if in_calibration_share(p, 8)]
    assert 0.10 < len(picked) / len(paths) < 0.15
    moved = [Path("/elsewhere/copy") / p.parent.name / p.name for p in paths]
    assert [in_calibration_share(p, 8) for p in moved] == [p in picked for p in paths]
    assert not any(in_calibration_share(p, 0) for p in paths)
    assert all(in_calibration_share(p, 1) for p in paths)
    other = {p for p in paths if in_calibration_share(Path("/a/bites/flea") / p.name, 8)}
    assert other != set(picked)  # the condition folder is part of the draw


def test_the_calibration_share_never_reaches_the_gate_set(msid, tmp_path):
    held = load_dataset(copy_subset(msid, tmp_path / "msid", {"mpox": 3, "normal": 3}), "binary")
    coll = tmp_path / "bites"
    for i, src in enumerate(sorted((msid / "measles").glob("*.png"))[:40]):
        (coll / "ant").mkdir(parents=True, exist_ok=True)
        shutil.copy(src, coll / "ant" / f"bite{i}.png")
    req = ExportRequest(Path("ckpt.pt"), msid, tmp_path / "out", collections=[coll])
    gated, shared = gate_set(held, req)
    share = [p for p in sorted(coll.rglob("*.png")) if in_calibration_share(p, 8)]
    assert 0 < len(shared) == len(share) < 40
    assert len(gated) == len(held) + 40 - len(share)
    assert not set(share) & set(gated.paths) and set(held.paths) <= set(gated.paths)
    assert all(s.ndim == 3 and s.shape[2] == 3 and s.dtype == np.uint8 for s in shared)
    none = ExportRequest(Path("ckpt.pt"), msid, tmp_path / "out", collections=[coll], calib_share=0)
    gated, shared = gate_set(held, none)
    assert len(gated) == len(held) + 40 and shared == []


def _reference(p_ref: np.ndarray) -> gate.Reference:
    probs = np.stack([1 - p_ref, p_ref], 1)
    return gate.Reference(
        (np.arange(len(p_ref)) % 2).astype(int), probs, np.ones((len(p_ref), 2, 2)), p_ref
    )


def test_flips_on_the_other_collections_fail_the_gate_even_when_msid_hides_them():
    """900 MSID photos agree, 8 of 100 look-alike photos next to the threshold flip: 99.2 % over
    the whole gate set passes the limit (0.98); the other collections' 92 % does not."""
    thr, rng = 0.3, np.random.default_rng(0)
    p_ref = np.concatenate([rng.uniform(0.5, 0.99, 900), np.full(100, thr + 0.01)])
    names = ["msid"] * 900 + ["bites"] * 60 + ["idscabies"] * 40
    p = p_ref.copy()
    p[900:908] = thr - rng.uniform(0.001, 0.01, 8)  # distinct: no clipped-logit look
    logits = np.log(np.stack([1 - p, p], 1))
    cams = np.ones((1000, 2, 2, 2))
    whole = gate.file_metrics(_reference(p_ref), logits, cams, 1, thr)
    assert whole["decision_agreement"] == pytest.approx(0.992)
    assert "other_decision_agreement" not in whole  # no collections given
    m = gate.file_metrics(_reference(p_ref), logits, cams, 1, thr, names=names)
    assert m["decision_agreement_by_collection"] == {
        "msid": 1.0,
        "bites": pytest.approx(52 / 60),
        "idscabies": 1.0,
    }
    assert m["other_decision_agreement"] == pytest.approx(0.92)
    assert {k: v for k, v in m.items() if k in whole} == whole
    gate.check("model.int8.onnx", "int8", whole | {"cam_pearson": 1.0}, gate.Limits(), binary=True)
    with pytest.raises(UserError, match=r"decision agreement 0\.920 on the other collections"):
        gate.check("model.int8.onnx", "int8", m | {"cam_pearson": 1.0}, gate.Limits(), binary=True)
    msid_only = gate.file_metrics(
        _reference(p_ref[:900]), logits[:900], cams[:900], 1, thr, names=names[:900]
    )
    assert "other_decision_agreement" not in msid_only


def test_calibration_reads_in_whole_passes_and_the_last_is_short():
    """ONNX Runtime's strided calibration wants a size in whole passes: 425 images read as
    passes of 64, the last holding 41, every image once."""
    images = [np.full((3, 2, 2), i, np.float32) for i in range(425)]
    reader = _Reader(images)
    assert len(reader) == 448 and len(reader) % STRIDE == 0
    seen = []
    for start in range(0, len(reader), STRIDE):
        reader.set_range(start, start + STRIDE)
        while (x := reader.get_next()) is not None:
            seen.append(int(x["input"][0, 0, 0, 0]))
    assert seen == list(range(425))


def test_a_negative_share_is_one_line(tmp_path):
    args = ("--checkpoint", MODELS / "micrompoxnet-binary" / "checkpoint.pt", "--out", tmp_path)
    proc = run_cli("train_host.cli", "export", *args, "--calib-share", "-1", ok=False)
    assert "--calib-share must be 0 (MSID only) or more" in one_line_error(proc)
