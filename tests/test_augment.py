import torch

from train_host.augment import RandomCLAHE, train_transform
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
