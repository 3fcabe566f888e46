"""A site's own threshold from its lab-confirmed photos (train_host/site_calibration.py), on real
photos the default never trained on: MSID's held-out mpox photos and one look-alike collection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from device.core.bundle import load_bundle
from device.updates.signing import SIGNATURE
from tests.conftest import MODELS, one_line_error, run_cli

pytestmark = pytest.mark.slow  # two real scorings of 54 photos

DEFAULT = MODELS / (MODELS / "DEFAULT").read_text().strip()


@pytest.fixture(scope="module")
def site(msid, tmp_path_factory) -> Path:
    """24 held-out mpox photos as positives, 30 bites as negatives (class folders, as
    `cases export --training` writes them)."""
    split = json.loads((DEFAULT / "split.json").read_text())
    held = [split["files"][i] for i in split["test"] + split["val"]]
    root = tmp_path_factory.mktemp("site") / "clinic-a"
    (root / "mpox").mkdir(parents=True)
    for name in [f for f in held if f.startswith("mpox/")][:24]:
        shutil.copy(msid / name, root / name)
    bites = msid.parent / "bites" / "bite_ant"
    (root / "bites").mkdir()
    for p in sorted(bites.iterdir())[:30]:
        shutil.copy(p, root / "bites" / p.name)
    return root


def test_a_site_calibration_is_a_new_bundle_with_its_record(site, tmp_path):
    out = tmp_path / "site-bundle"
    proc = run_cli("train_host.cli", "calibrate", "--site", site, "--bundle", DEFAULT, "--out", out)
    assert "before: threshold" in proc.stdout and "54 photos of site clinic-a" in proc.stdout
    new, old = load_bundle(out), load_bundle(DEFAULT)  # every pinned file verified
    rec = new.manifest.document["site_calibration"]
    assert new.threshold == rec["threshold"] and rec["threshold_before"] == old.threshold
    assert (rec["positives"], rec["negatives"]) == (24, 30) and len(rec["photos_sha256"]) == 64
    # never below the kit's target on the photos it judges (its refusals are misses anyway)
    judged_pos = rec["positives"] - rec["cannot_judge_positives"]
    assert rec["after"]["sensitivity"]["value"] * rec["positives"] >= 0.95 * judged_pos - 1e-9
    assert rec["rule"] == "sensitivity>=0.95"
    assert new.manifest.version.startswith(old.manifest.version + "+site.clinic-a.")
    assert new.manifest.created > old.manifest.created and not (out / SIGNATURE).exists()
    for f in old.files():  # the model files are the same bytes
        assert (out / f.name).read_bytes() == f.path.read_bytes()
    assert "## Site calibration" in (out / "card.md").read_text()
    again = run_cli(
        "train_host.cli", "calibrate", "--site", site, "--bundle", DEFAULT, "--out", out, ok=False
    )
    assert "exists" in one_line_error(again)


def test_a_site_with_too_few_results_is_refused_with_the_reason(site, tmp_path):
    small = tmp_path / "small"
    shutil.copytree(site, small)
    for p in sorted((small / "mpox").iterdir())[5:]:
        p.unlink()
    proc = run_cli("train_host.cli", "calibrate", "--site", small, "--bundle", DEFAULT,
                   "--out", tmp_path / "x", ok=False)  # fmt: skip
    assert "needs at least 20 of each" in one_line_error(proc) and not (tmp_path / "x").exists()
