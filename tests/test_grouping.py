import io

import numpy as np
from PIL import Image

from train_host.data import load_dataset
from train_host.grouping import Split, grouped_folds, make_split, near_duplicate_groups


def _reencoded(img: np.ndarray, size: int, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).resize((size, size), Image.BILINEAR).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_copies_share_a_group_and_a_side(small_msid):
    data = load_dataset(small_msid, "binary")
    originals = list(data.images)
    n = len(originals)
    copies = [_reencoded(im, 160, 70) for im in originals[:10]]
    mirrored = [np.ascontiguousarray(im[:, ::-1]) for im in originals[10:15]]
    images = originals + copies + mirrored
    labels = np.concatenate([data.labels, data.labels[:10], data.labels[10:15]])
    groups = near_duplicate_groups(images)
    for i in range(10):
        assert groups[n + i] == groups[i], f"re-encoded copy of image {i} not grouped with it"
    for i in range(5):
        assert groups[n + 10 + i] == groups[10 + i], "mirrored copy not grouped"
    assert len(np.unique(groups)) > len(images) // 2  # distinct photos stay distinct
    for train, test in grouped_folds(labels, groups, 3, seed=0):
        assert not set(groups[train]) & set(groups[test])
        assert set(labels[test]) == {0, 1}  # stratified: both classes held out


def test_split_roundtrip_and_disjoint(small_msid, tmp_path):
    data = load_dataset(small_msid, "multiclass")
    groups = near_duplicate_groups(data.images)
    split = make_split(data.relpaths(), data.labels, groups, 0, 0.2, 0.2)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert sum(map(len, parts)) == len(data) and not (parts[0] & parts[1] | parts[1] & parts[2])
    split.save(tmp_path / "split.json")
    assert Split.load(tmp_path / "split.json") == split
