import numpy as np
import pytest

from train_host.preprocess import PreprocessSpec, center_square, preprocess


def test_center_square_keeps_the_middle():
    img = np.zeros((60, 100, 3), np.uint8)
    img[:, 20:80] = 255
    assert center_square(img).shape == (60, 60, 3)
    assert center_square(img).min() == 255


def test_preprocess_normalises_and_orders_channels():
    img = np.zeros((224, 224, 3), np.uint8)
    img[..., 0] = 255  # pure red
    spec = PreprocessSpec(128)
    x = preprocess(img, spec)
    assert x.shape == (3, 128, 128) and x.dtype == np.float32
    assert x[0].mean() == pytest.approx((1 - spec.mean[0]) / spec.std[0], abs=1e-5)
    assert x[2].mean() == pytest.approx((0 - spec.mean[2]) / spec.std[2], abs=1e-5)


def test_spec_roundtrips_through_a_dict():
    spec = PreprocessSpec(160, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize="linear")
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
