import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from train_host import UserError
from train_host.data import load_rgb
from train_host.models import create_model, model_names
from train_host.models.efficientnet_lite import LITE0_MEAN, LITE0_STD, VARIANTS, lite_imagenet
from train_host.preprocess import PreprocessSpec, preprocess
from train_host.profile import profile


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("size", [96, 128, 224])
def test_micrompoxnet_shapes(classes, size):
    model = create_model("micrompoxnet", classes, size).eval()
    x = torch.randn(2, 3, size, size)
    assert model(x).shape == (2, classes)
    assert model.features(x).shape == (2, 256, size // 32, size // 32)


def test_micrompoxnet_size_matches_reconstruction():
    p = profile("micrompoxnet")
    assert 0.39e6 < p["params"] < 0.42e6  # 0.405 M with the GAP + linear head
    assert 440e6 < p["macs"] < 470e6  # ~454 M MACs at 128 px
    half = profile("micrompoxnet", input_size=64)
    assert half["macs"] == pytest.approx(p["macs"] / 4, rel=0.02)


def test_width_scales_channels():
    model = create_model("micrompoxnet", 2, 128, width=0.5)
    assert model.fc.in_features == 128


@pytest.mark.parametrize(
    "name", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet18"]
)
def test_baselines_have_the_cam_head(name):
    model = create_model(name, 4, 128).eval()
    assert model(torch.randn(1, 3, 128, 128)).shape == (1, 4)
    assert isinstance(model.fc, torch.nn.Linear)


def test_registry_lists_required_models():
    required = {
        "micrompoxnet",
        "mobilenet_v2",
        "mobilenet_v3_small",
        "efficientnet_b0",
        "resnet18",
        "efficientnet_lite0",
    }
    assert required <= set(model_names())
    with pytest.raises(UserError, match="unknown model"):
        create_model("alexnet9000", 2)


def test_local_weights_load_into_backbone(tmp_path):
    src = create_model("mobilenet_v3_small", 2)
    torch.save(src.backbone.state_dict(), tmp_path / "w.pt")
    dst = create_model("mobilenet_v3_small", 2, weights=tmp_path / "w.pt")
    for a, b in zip(
        src.backbone.state_dict().values(), dst.backbone.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    torch.save({"unrelated.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="lacks"):
        create_model("mobilenet_v3_small", 2, weights=tmp_path / "bad.pt")


def _lite_outputs(variant: int, pretrained: bool, images) -> tuple[np.ndarray, np.ndarray]:
    """(ImageNet softmax, pooled features) with the TF-style [-1, 1] scaling the weights expect."""
    size = VARIANTS[variant][0]
    net = lite_imagenet(variant, size, pretrained=pretrained).eval()
    spec = PreprocessSpec(size, mean=LITE0_MEAN, std=LITE0_STD)
    x = torch.from_numpy(np.stack([preprocess(im, spec) for im in images]))
    with torch.no_grad():
        feats = net.extract_features(x)
        probs = torch.softmax(net._fc(feats.mean((2, 3))), 1)
    return probs.numpy(), feats.mean((2, 3)).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lite_packaged_weights_give_imagenet_features(msid, variant):
    """Strict load (inside lite_imagenet), confident ImageNet outputs (a random init is near
    uniform: entropy ~ log 1000 = 6.9), and features that separate lesions from healthy skin far
    better than random-init features do."""
    images = [
        load_rgb(p) for c in ("mpox", "normal") for p in sorted((msid / c).glob("*.png"))[:30]
    ]
    y = np.r_[np.ones(30), np.zeros(30)]
    scores = {}
    for pretrained in (True, False):
        probs, feats = _lite_outputs(variant, pretrained, images)
        entropy = float(-(probs * np.log(np.clip(probs, 1e-12, 1))).sum(1).mean())
        feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
        acc = cross_val_score(LogisticRegression(max_iter=2000), feats, y, cv=5).mean()
        scores[pretrained] = (entropy, acc)
    assert scores[False][0] > 6.5 and scores[True][0] < 5.0
    assert scores[True][1] >= 0.85
    assert scores[True][1] > scores[False][1] + 0.08


def test_lite0_classifier_starts_from_packaged_backbone():
    a = create_model("efficientnet_lite0", 2)
    b = create_model("efficientnet_lite0", 4)
    sa, sb = a.backbone.state_dict(), b.backbone.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert b.fc.out_features == 4
