"""The skin-tone estimate (ITA) on real photos, its groups, and the per-tone numbers of the
collection-shift protocol and `classify --json` (issue 28, item 1)."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest

from device.core.images import read_rgb
from device.core.skin_tone import GROUPS, darken, group_of, ita, merged_groups
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def photos(msid):
    paths = sorted((msid / "mpox").iterdir())[:40:4] + sorted((msid / "normal").iterdir())[:40:4]
    return [read_rgb(p) for p in paths]


def test_a_darkened_photo_reads_darker(photos):
    """Metamorphic: every real photo with skin, darkened in steps, gets a lower ITA each step
    (the estimate orders a photo and its darkened copy)."""
    judged = 0
    for rgb in photos:
        angles = [ita(darken(rgb, f)) if f < 1 else ita(rgb) for f in (1.0, 0.8, 0.6, 0.45)]
        if None in angles:
            continue
        judged += 1
        assert all(a > b for a, b in itertools.pairwise(angles)), angles
    assert judged >= 15


def test_no_skin_has_no_tone():
    grey = np.full((200, 200, 3), 128, np.uint8)
    assert ita(grey) is None and group_of(None) == "no skin"


def test_groups_follow_chardon():
    assert [group_of(a) for a in (60, 50, 30, 20, 0, -45)] == [name for name, _ in GROUPS]


def test_small_groups_merge_with_a_neighbour():
    labels = ["very light"] * 5 + ["light"] * 30 + ["tan"] * 25 + ["brown"] * 8 + ["dark"] * 15
    names = merged_groups(labels)
    assert names["very light"] == names["light"] == "very light + light"
    assert names["brown"] == names["dark"] == "brown + dark" and names["tan"] == "tan"
    assert merged_groups(["dark"] * 3)["dark"] == "dark"  # one group: kept, however small


def test_protocol_numbers_per_tone_add_up(photos):
    from train_host.collection_shift import by_tone

    y = np.array([1] * 10 + [0] * 10)
    p = np.linspace(0.05, 0.95, 20)[::-1]
    tones = by_tone(photos, y, p, 0.5)
    assert sum(m["n"] for m in tones.values()) == 20
    assert sum(m["positives"] for m in tones.values()) == 10
    order = [g for g in tones if g != "no skin"]
    medians = [tones[g]["ita_median"] for g in order]
    assert medians == sorted(medians, reverse=True)  # lightest first


def test_classify_json_carries_the_tone(msid, tmp_path):
    src = sorted((msid / "mpox").iterdir())[0]
    rgb = read_rgb(src)
    cv2.imwrite(str(tmp_path / "a.png"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "b-darker.png"), darken(rgb, 0.6)[..., ::-1])
    proc = run_cli(
        "device.cli", "classify", "--json", "--no-ood-gate", "--no-quality-gate", tmp_path
    )
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["ita_group"] in {n for n, _ in GROUPS} for r in rows] == [True, True]
    assert rows[0]["ita"] > rows[1]["ita"]
