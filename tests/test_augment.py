import numpy as np
import torch

from device.core.preprocess import shades_of_grey
from train_host.augment import RandomCLAHE, RandomGamma, RandomWhiteBalance, train_transform
from train_host.preprocess import PreprocessSpec


def test_augmented_tensors_have_model_shape_and_vary():
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8)
    t = train_transform(PreprocessSpec(128), strength=1.0, clahe=True)
    a, b = t(img), t(img)
    assert a.shape == (3, 128, 128) and a.dtype == torch.float32
    assert not torch.equal(a, b)


def test_strength_zero_is_deterministic_resize_and_normalise():
    img = torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8)
    t = train_transform(PreprocessSpec(96), strength=0.0)
    assert torch.equal(t(img), t(img))


def test_clahe_raises_local_contrast():
    torch.manual_seed(0)
    low_contrast = torch.randint(110, 131, (1, 64, 64), dtype=torch.uint8)
    img = low_contrast.repeat(3, 1, 1)
    out = RandomCLAHE(p=1.0)(img)
    assert out.dtype == torch.uint8 and out.shape == img.shape
    assert (out.float().std()) > img.float().std()


def test_camera_augmentation_keeps_shape_and_changes_colour_and_tone():
    torch.manual_seed(0)
    img = torch.full((3, 160, 200), 120, dtype=torch.uint8)
    t = train_transform(PreprocessSpec(96), strength=0.0, camera=1.0)
    outs = torch.stack([t(img) for _ in range(40)])
    assert outs.shape == (40, 3, 96, 96)
    channel_means = outs.mean((2, 3))
    # white balance moves red and blue against green; gamma moves overall brightness
    assert (channel_means[:, 0] - channel_means[:, 1]).abs().max() > 0.1
    assert channel_means[:, 1].std() > 0.05


def test_white_balance_keeps_green_and_gamma_keeps_extremes():
    img = torch.tensor([[[0, 100, 255]]] * 3, dtype=torch.uint8)
    torch.manual_seed(1)
    wb = RandomWhiteBalance(0.3, p=1.0)(img)
    assert torch.equal(wb[1], img[1])
    g = RandomGamma(2.0, p=1.0)(img)
    assert g[0, 0, 0] == 0 and g[0, 0, 2] == 255


def test_colour_constancy_removes_a_colour_cast():
    rng = np.random.default_rng(0)
    scene = rng.integers(40, 200, (64, 64, 3)).astype(np.float32)
    cast = np.clip(scene * np.array([1.3, 1.0, 0.7]), 0, 255).astype(np.uint8)
    neutral = shades_of_grey(scene.astype(np.uint8))
    balanced = shades_of_grey(cast)
    means = balanced.reshape(-1, 3).mean(0)
    assert means.max() - means.min() < 6  # the cast (about 70 levels) is gone
    assert np.abs(balanced.astype(int) - neutral.astype(int)).mean() < 4
    t = train_transform(PreprocessSpec(64, colour_constancy="shades_of_grey"), strength=0.0)
    x = torch.from_numpy(cast).permute(2, 0, 1).contiguous()
    assert t(x).shape == (3, 64, 64)


def test_augmentations_keep_the_label():
    img = torch.randint(0, 256, (3, 100, 120), dtype=torch.uint8)
    t = train_transform(
        PreprocessSpec(64, colour_constancy="shades_of_grey"), 1.0, clahe=True, camera=1.0
    )
    for label in (0, 1, 3):
        out, kept = t(img, label)
        assert kept == label and out.shape == (3, 64, 64)
