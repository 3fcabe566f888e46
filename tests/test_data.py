import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from train_host import UserError
from train_host.data import load_dataset, load_rgb


def _folder(tmp_path: Path, msid: Path) -> Path:
    """Real images plus every awkward case: corrupt, truncated, grey, RGBA, EXIF-rotated JPEG,
    and the formats the kit reads beyond PNG and JPEG (BMP, WebP)."""
    root = tmp_path / "data"
    for cls in ("mpox", "normal", "measles"):
        (root / cls).mkdir(parents=True)
    real = sorted((msid / "mpox").glob("*.png"))[:3]
    for f in real:
        (root / "mpox" / f.name).write_bytes(f.read_bytes())
    (root / "mpox" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (root / "normal" / "truncated.jpg").write_bytes(
        (msid / "normal" / "normal1.png").read_bytes()[:200]
    )
    rgb = load_rgb(real[0])
    Image.fromarray(rgb).convert("L").save(root / "normal" / "grey.png")
    Image.fromarray(rgb).convert("RGBA").save(root / "measles" / "rgba.png")
    wide = np.zeros((40, 80, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    Image.fromarray(wide).save(root / "measles" / "rotated.jpg", exif=exif)
    Image.fromarray(rgb).save(root / "normal" / "photo.bmp")
    Image.fromarray(rgb).save(root / "normal" / "photo.webp", lossless=True)
    (root / "measles" / "notes.txt").write_text("not an image")
    return root


def test_loading_skips_corrupt_and_normalises_modes(tmp_path, msid, caplog):
    root = _folder(tmp_path, msid)
    with caplog.at_level(logging.WARNING):
        data = load_dataset(root, "binary")
    assert len(data) == 8
    assert sorted(s.split(" ")[0] for s in data.skipped) == [
        "mpox/corrupt.png",
        "normal/truncated.jpg",
    ]
    assert "corrupt.png" in caplog.text and "truncated.jpg" in caplog.text
    assert all(im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8 for im in data.images)
    rotated = data.images[data.relpaths().index("measles/rotated.jpg")]
    assert rotated.shape[:2] == (80, 40)  # EXIF orientation applied
    assert data.class_names == ["other", "mpox"]
    assert data.binary_targets().sum() == 3
    bmp, webp = (data.images[data.relpaths().index(f"normal/photo.{x}")] for x in ("bmp", "webp"))
    assert np.array_equal(bmp, webp) and bmp.shape[2] == 3  # what the kit reads, too


def test_multiclass_labels_follow_folders(tmp_path, msid):
    data = load_dataset(_folder(tmp_path, msid), "multiclass")
    assert data.class_names == ["measles", "mpox", "normal"]
    assert [data.class_names[i] for i in data.labels] == data.source_labels
    grey = data.images[data.relpaths().index("normal/grey.png")]
    assert np.array_equal(grey[..., 0], grey[..., 2])


def test_clear_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "cats").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cats" / "a.png")
    with pytest.raises(UserError, match="no 'mpox' class folder"):
        load_dataset(tmp_path)
    with pytest.raises(UserError, match="unknown task"):
        load_dataset(tmp_path, "regression")
