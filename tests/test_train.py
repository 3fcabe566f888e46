"""Real training on real images (small, so CI stays fast)."""

import json

import pytest
import torch
from conftest import copy_subset, fast_config

from train_host import checkpoint
from train_host.data import load_dataset
from train_host.evaluate import calibrate_and_evaluate
from train_host.grouping import make_split, near_duplicate_groups
from train_host.models import create_model
from train_host.train import Trainer

pytestmark = pytest.mark.slow


def test_short_training_beats_chance_on_held_out_images(msid, tmp_path):
    root = copy_subset(
        msid, tmp_path / "data", {"mpox": 60, "chickenpox": 40, "measles": 40, "normal": 60}
    )
    data = load_dataset(root, "binary")
    split = make_split(
        data.relpaths(),
        data.labels,
        near_duplicate_groups(data.images),
        seed=0,
        val_fraction=0.2,
        test_fraction=0.3,
    )
    trainer = Trainer(fast_config(), data, split, tmp_path / "run")
    best = trainer.run()
    res = calibrate_and_evaluate(
        best, data.subset(split.val), data.subset(split.test), tmp_path / "run", trainer.history
    )
    test = res["test"]["screening"]
    assert test["n"] >= 55
    assert test["auc_ci95"][0] > 0.5, f"held-out AUC {test['auc']:.3f} {test['auc_ci95']}"
    for name in (
        "roc.png",
        "confusion.png",
        "reliability.png",
        "curves.png",
        "report.md",
        "metrics.json",
        "split.json",
        "history.jsonl",
    ):
        assert (tmp_path / "run" / name).stat().st_size > 0
    model, ckpt = checkpoint.load_model(best)
    assert ckpt["threshold"]["value"] == res["threshold"]["value"]
    assert ckpt["data"]["test"] == len(split.test)
    assert not any(p.requires_grad and torch.isnan(p).any() for p in model.parameters())


def test_resume_continues_where_it_stopped(small_msid, tmp_path):
    data = load_dataset(small_msid, "binary")
    split = make_split(
        data.relpaths(), data.labels, near_duplicate_groups(data.images), 0, 0.25, 0.0
    )
    out = tmp_path / "run"
    Trainer(fast_config(epochs=2), data, split, out).run()
    first = (out / "history.jsonl").read_text().splitlines()
    Trainer(fast_config(epochs=3), data, split, out, resume=True).run()
    lines = [json.loads(s) for s in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in lines] == [1, 2, 3]
    assert [json.dumps(h) for h in lines[:2]] == first
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 3


def test_lp_ft_with_kit_augmentations_trains(small_msid, tmp_path):
    """LP-FT end to end: the probe fits the head, BatchNorm statistics stay frozen through the
    epoch, and the kit-framing, text and tone augmentations run on real photos."""
    data = load_dataset(small_msid, "binary")
    groups = near_duplicate_groups(data.images)
    split = make_split(data.relpaths(), data.labels, groups, 0, 0.25, 0.0)
    cfg = fast_config(
        epochs=1, linear_probe=1, freeze_bn=True, backbone_lr=0.2, lesion_crop=0.5,
        text_paste=0.3, tone_aug=0.5,
    )  # fmt: skip
    trainer = Trainer(cfg, data, split, tmp_path / "lpft")
    best = trainer.run()
    model, _ = checkpoint.load_model(best)
    fresh = create_model("micrompoxnet", 2, 64)
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    bn0 = [m for m in fresh.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a.running_var, b.running_var) for a, b in zip(bn, bn0, strict=True))
    assert not torch.equal(model.fc.weight, fresh.fc.weight)  # the probe set the head


def test_weight_average_warms_up_then_follows_its_decay():
    """The first update copies; then d = min(decay, (1 + n) / (10 + n)), TF's warm-up."""
    from train_host.averaging import ema_model

    lin = torch.nn.Linear(1, 1, bias=False)
    ema = ema_model(lin, 0.5)
    expected = None
    for n, value in enumerate([4.0, 0.0, 0.0, 8.0, 8.0]):
        lin.weight.data.fill_(value)
        ema.update_parameters(lin)
        d = min(0.5, (1 + n) / (10 + n))  # n = updates averaged before this one
        expected = value if expected is None else expected * d + value * (1 - d)
        assert ema.module.weight.item() == pytest.approx(expected)
    assert 0 < ema.module.weight.item() < 8  # an average, not the last iterate


def test_training_with_weight_averaging_validates_and_saves_the_average(small_msid, tmp_path):
    """--ema: the validation AUC in the history is the averaged model's, best.pt holds the model
    that was validated, a resumed run continues the average, and a run cannot be resumed with
    the average switched off."""
    from sklearn.metrics import roc_auc_score

    from train_host import UserError
    from train_host.evaluate import predict

    data = load_dataset(small_msid, "binary")
    groups = near_duplicate_groups(data.images)
    split = make_split(data.relpaths(), data.labels, groups, 0, 0.25, 0.0)
    out = tmp_path / "ema"
    Trainer(fast_config(epochs=2, ema=0.9, patience=1), data, split, out).run()
    Trainer(fast_config(epochs=3, ema=0.9, patience=1), data, split, out, resume=True).run()
    state = torch.load(out / "last.pt", weights_only=False)
    average = {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
    assert int(state["ema"]["n_averaged"]) == 3 * (len(split.train) // 16)  # every step
    weights = [k for k in average if k.endswith(".weight")]
    assert not all(torch.equal(average[k], state["model"][k]) for k in weights)
    model, val = create_model("micrompoxnet", 2, 64), data.subset(split.val)
    history = [json.loads(s) for s in (out / "history.jsonl").read_text().splitlines()]

    def val_auc(state_dict) -> float:
        model.load_state_dict(state_dict)
        probs = predict(model, val.images, fast_config().preprocess_spec())
        return roc_auc_score(val.binary_targets(), probs[:, 1])

    assert val_auc(average) == pytest.approx(history[-1]["val_auc"], abs=1e-9)
    best = checkpoint.read(out / "best.pt")
    assert val_auc(best["state_dict"]) == pytest.approx(
        history[best["epoch"] - 1]["val_auc"], abs=1e-9
    )
    with pytest.raises(UserError, match="trained with --ema"):
        Trainer(fast_config(epochs=4), data, split, out, resume=True).run()


def test_the_linear_probe_alone_is_a_model(small_msid, tmp_path):
    """--epochs 0 with --linear-probe: the frozen features' logistic regression is validated and
    saved as it is (a candidate that keeps every ImageNet feature); --epochs 0 alone is refused."""
    from train_host import UserError

    data = load_dataset(small_msid, "binary")
    groups = near_duplicate_groups(data.images)
    split = make_split(data.relpaths(), data.labels, groups, 0, 0.25, 0.0)
    with pytest.raises(UserError, match="0 only with --linear-probe"):
        Trainer(fast_config(epochs=0), data, split, tmp_path / "none").run()
    best = Trainer(fast_config(epochs=0, linear_probe=1), data, split, tmp_path / "lp").run()
    history = [json.loads(s) for s in (tmp_path / "lp" / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [0] and history[0]["val_auc"] > 0.5
    model, ckpt = checkpoint.load_model(best)
    assert ckpt["epoch"] == 0
    assert not torch.equal(model.fc.weight, create_model("micrompoxnet", 2, 64).fc.weight)
