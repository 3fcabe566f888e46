"""Checkpoint evaluation on a folder, without training (an untrained model is enough here)."""

import json

import pytest

from train_host import UserError, checkpoint
from train_host.data import load_dataset
from train_host.evaluate import evaluate_checkpoint
from train_host.models import create_model
from train_host.preprocess import PreprocessSpec


def _untrained(path, classes, task):
    model = create_model("micrompoxnet", len(classes), 64, width=0.25)
    meta = {
        "model": "micrompoxnet",
        "model_kwargs": {"width": 0.25},
        "task": task,
        "class_names": classes,
        "positive_class": "mpox",
        "preprocess": PreprocessSpec(64).to_dict(),
    }
    checkpoint.save_model(path, model, meta)
    return path


def test_evaluate_folder_writes_reports(small_msid, tmp_path):
    ckpt = _untrained(tmp_path / "m.pt", ["chickenpox", "measles", "mpox", "normal"], "multiclass")
    data = load_dataset(small_msid, "multiclass")
    res = evaluate_checkpoint(ckpt, data, tmp_path / "eval")
    assert res["threshold"]["rule"].startswith("default 0.5")
    assert res["folder"]["screening"]["n"] == len(data) == 48
    assert len(res["folder"]["multiclass"]["confusion"]) == 4
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["reported_on"] == "folder"
    rows = (tmp_path / "eval" / "predictions.csv").read_text().splitlines()
    assert rows[0] == "file,label,p_chickenpox,p_measles,p_mpox,p_normal" and len(rows) == 49
    for png in ("roc.png", "confusion.png", "confusion_multiclass.png", "reliability.png"):
        assert (tmp_path / "eval" / png).stat().st_size > 0


def test_task_mismatch_is_a_user_error(small_msid, tmp_path):
    ckpt = _untrained(tmp_path / "m.pt", ["other", "mpox"], "binary")
    with pytest.raises(UserError, match="differ from the checkpoint"):
        evaluate_checkpoint(ckpt, load_dataset(small_msid, "multiclass"), tmp_path / "eval")


def test_not_a_checkpoint_is_a_user_error(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        checkpoint.load_model(tmp_path / "junk.pt")
