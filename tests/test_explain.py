"""`mpox-train explain`: captum attributions of the right shape, a deletion score that finds a
known region, and the CLI end to end on real images with the committed binary bundle."""

import json

import numpy as np
import pytest
import torch
from conftest import MODELS, copy_subset, run_cli
from torch import nn

from train_host import UserError
from train_host.cli import main
from train_host.explain import Explainer, default_layers, parse_methods
from train_host.explain import deletion as dl
from train_host.explain.index import order
from train_host.models import create_model
from train_host.models.registry import Classifier

BUNDLE = MODELS / "micrompoxnet-binary"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_parse_methods():
    assert parse_methods("gradcam, IG,lime,ig") == ["gradcam", "ig", "lime"]
    for bad in ("gradcam,shap", "", ","):
        with pytest.raises(UserError, match="choose from gradcam,ig,lime"):
            parse_methods(bad)


def test_default_layers_are_the_last_and_the_16x16_stage():
    torch.manual_seed(0)
    model = create_model("micrompoxnet", 2, input_size=128, width=0.25)
    assert default_layers(model, 128) == ["backbone", "backbone.7"]
    ex = Explainer(model, 128, ["gradcam"])
    assert ex.sides == {"backbone": 4, "backbone.7": 16}
    assert ex.title("gradcam:backbone.7") == "Grad-CAM, backbone.7 (16x16)"
    with pytest.raises(UserError, match=r"no layer 'backbone\.99'"):
        Explainer(model, 128, ["gradcam"], layers=["backbone.99"])


def test_each_method_gives_a_map_of_the_input_shape():
    torch.manual_seed(0)
    model = create_model("micrompoxnet", 2, input_size=64, width=0.25).eval()
    ex = Explainer(
        model, 64, ["gradcam", "ig", "lime"], ig_steps=4, lime_samples=16, superpixels=12
    )
    rng = np.random.default_rng(0)
    view = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    x = torch.from_numpy(((view / 255.0 - 0.5) / 0.25).astype(np.float32).transpose(2, 0, 1))[None]
    out = ex.explain(x, view, target=1)
    assert list(out.maps) == ["gradcam:backbone", "gradcam:backbone.7", "ig", "lime"]
    for name, m in out.maps.items():
        assert m.shape == (64, 64) and np.isfinite(m).all(), name
        if name.startswith("gradcam:"):
            assert m.min() >= 0  # ReLU'd for display and ranking (may be all 0 untrained)
        else:
            assert np.abs(m).max() > 0, name
    assert out.cam_raw.shape == (2, 2) and np.abs(out.cam_raw).max() > 0  # as a bundle emits it
    assert out.segments.shape == (64, 64) and 2 <= len(np.unique(out.segments)) <= 30
    for k in np.unique(out.segments):  # LIME: one weight per superpixel
        assert np.ptp(out.maps["lime"][out.segments == k]) == 0


def test_patch_ranking_and_area():
    ids = dl.patch_ids(8, 4)
    assert ids.shape == (8, 8) and ids[0, 0] == 0 and ids[7, 7] == 15 and ids[2, 5] == 6
    attr = np.zeros((8, 8))
    attr[6:8, 0:2] = 5.0  # patch 12
    attr[0:2, 2:4] = 1.0  # patch 1
    assert list(dl.rank_patches(attr, ids)[:3]) == [12, 1, 0]
    assert dl.area(np.ones(5)) == pytest.approx(1.0)
    assert dl.area(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.25)


class RegionMask(nn.Module):
    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        return x * self.mask


def region_model(size: int, region: tuple[slice, slice]) -> Classifier:
    """A fixed model whose P(class 1) depends only on the brightness inside `region`."""
    brightness = nn.Conv2d(3, 1, 1)
    mask = torch.zeros(1, 1, size, size)
    mask[0, 0, region[0], region[1]] = 1.0
    model = Classifier(nn.Sequential(brightness, RegionMask(mask)), 1, 2, dropout=0.0)
    with torch.no_grad():
        brightness.weight.fill_(1 / 3)
        brightness.bias.zero_()
        model.fc.weight.copy_(torch.tensor([[-40.0], [40.0]]))
        model.fc.bias.copy_(torch.tensor([4.0, -4.0]))  # P(1) > 0.5 iff GAP > 0.1
    return model.eval()


@pytest.mark.parametrize("fill", ["blur", "mean"])
def test_deletion_score_beats_random_for_a_model_that_looks_at_a_known_region(fill):
    size, region = 64, (slice(8, 24), slice(40, 56))  # 2 x 2 patches of the 8 x 8 grid
    model = region_model(size, region)
    ex = Explainer(
        model, size, ["gradcam", "ig", "lime"], ig_steps=8, lime_samples=48, superpixels=16
    )
    deleter = dl.Deletion(model, size, grid=8, steps=16, fill=fill, random_orders=3)
    rng = np.random.default_rng(1)
    curves = []
    for i in range(3):
        x = rng.normal(0, 0.5, (1, 3, size, size)).astype(np.float32)
        x[..., region[0], region[1]] += 2.0  # a bright "lesion" where the model looks
        x = torch.from_numpy(x)
        assert ex.predict(x)[1] > 0.8
        view = np.uint8(np.clip((x[0].numpy().transpose(1, 2, 0) + 2) * 50, 0, 255))
        torch.manual_seed(i)
        maps = ex.explain(x, view, target=1).maps
        curves.append(deleter.run(x, 1, maps, seed=i))
    s = dl.summarise(curves)
    assert set(s) == {"gradcam:backbone", "ig", "lime", "random"}
    assert s["random"]["auc_mean"] > 0.2
    for name in ("gradcam:backbone", "ig", "lime"):
        assert s[name]["auc_mean"] < s["random"]["auc_mean"] - 0.2, (name, s[name], s["random"])
        assert s[name]["beats_random"] == 1.0
        assert s[name]["curve_mean"][1] < 0.5  # the first step removes the region


def test_index_puts_misclassified_first_then_confidence():
    recs = [
        {"name": "a", "prob": 0.9, "correct": True},
        {"name": "b", "prob": 0.6, "correct": False},
        {"name": "c", "prob": 0.99, "correct": None},
        {"name": "d", "prob": 0.8, "correct": False},
    ]
    assert [r["name"] for r in order(recs)] == ["d", "b", "c", "a"]


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    img = tmp_path / "x.png"
    img.write_bytes(b"not really")
    cases = [
        (["--checkpoint", tmp_path / "missing.pt", img], "checkpoint not found"),
        (["--bundle", BUNDLE, "--methods", "gradcam,shap", img], "unknown method(s) shap"),
        (["--bundle", BUNDLE, tmp_path / "empty"], "no images"),
        (["--bundle", BUNDLE, tmp_path / "nowhere"], "no such file or folder"),
        (["--bundle", MODELS / "efficientnet-lite0-binary", img], "holds no checkpoint.pt"),
        (["--bundle", tmp_path, img], "not a model bundle"),
        ([img], "--checkpoint CKPT or --bundle DIR"),
    ]
    for args, message in cases:
        assert main(["explain", "--out", str(tmp_path / "out"), *map(str, args)]) == 2, message
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_cli_writes_panels_index_and_json_for_real_images(msid, tmp_path):
    data = copy_subset(
        msid, tmp_path / "data", {c: 2 for c in ("mpox", "chickenpox", "measles", "normal")}
    )
    (data / "mpox" / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    proc = run_cli(
        "train_host.cli",
        "explain",
        "--bundle",
        BUNDLE,
        "--lime-samples",
        24,
        "--ig-steps",
        8,
        "--superpixels",
        30,
        "--deletion-steps",
        8,
        "--random-orders",
        1,
        "--out",
        out,
        data,
        timeout=600,
    )
    assert "deletion AUC lime" in proc.stdout and "model.int8.tflite" in proc.stdout
    s = json.loads((out / "explain.json").read_text())
    assert s["n_images"] == 8 and s["n_labelled"] == 8 and len(s["skipped"]) == 1
    assert s["methods"] == ["gradcam:backbone", "gradcam:backbone.7", "ig", "lime"]
    panels = sorted((out / "panels").glob("*.png"))
    assert len(panels) == 8 and all(1_000 < p.stat().st_size < 300_000 for p in panels)
    # the index lists every panel, in the JSON's order: misclassified first, then by confidence
    index = (out / "index.md").read_text()
    rows = [r for r in s["images"]]
    positions = [index.index(f"]({r['panel']})") for r in rows]
    assert positions == sorted(positions)
    wrong = [r["correct"] is False for r in rows]
    assert wrong == sorted(wrong, reverse=True)
    assert {r["true"] for r in rows} == {"mpox", "other"}
    for r in rows:
        assert r["correct"] == (r["true"] == r["label"]) and 0 <= r["prob"] <= 1
        assert set(r["deletion_auc"]) == {*s["methods"], "random"}
    # deletion: per method and random, averaged; plotted
    assert set(s["deletion"]) == {*s["methods"], "random"}
    for d in s["deletion"].values():
        assert 0 <= d["auc_mean"] <= 1 and len(d["curve_mean"]) == 9
    assert (out / "deletion.png").stat().st_size > 10_000
    # agreement: every bundle file's in-graph CAM against captum Grad-CAM, via the device runtime
    a = s["agreement"]
    assert set(a) == {
        "model.fp32.onnx",
        "model.int8.onnx",
        "model.fp32.tflite",
        "model.int8.tflite",
    }
    for name, entry in a.items():
        floor = 0.99 if entry["precision"] == "fp32" else 0.9
        assert entry["pearson_mean"] >= floor and entry["n"] == 8, name
    assert a["model.fp32.onnx"]["label_agreement"] == 1.0
