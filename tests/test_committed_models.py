"""The checkpoints committed under models/ load, and re-scoring their held-out test images
reproduces the numbers their reports state."""

import json
from pathlib import Path

import pytest

from train_host import checkpoint
from train_host.data import load_dataset
from train_host.evaluate import full_metrics, score
from train_host.grouping import Split

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.mark.parametrize(
    "name, task", [("micrompoxnet-binary", "binary"), ("micrompoxnet-4class", "multiclass")]
)
def test_committed_checkpoint_reproduces_its_report(name, task, msid):
    folder = MODELS / name
    model, ckpt = checkpoint.load_model(folder / "checkpoint.pt")
    assert ckpt["task"] == task and ckpt["positive_class"] == "mpox"
    assert ckpt["preprocess"]["size"] == 128
    split = Split.load(folder / "split.json")
    data = load_dataset(msid, task)
    assert data.relpaths() == split.files
    test = data.subset(split.test)
    metrics = full_metrics(test, score(model, ckpt, test), ckpt["threshold"]["value"])
    stated = json.loads((folder / "metrics.json").read_text())["test"]["screening"]
    got = metrics["screening"]
    assert got["auc"] == pytest.approx(stated["auc"], abs=1e-6)
    assert got["confusion"] == stated["confusion"]
