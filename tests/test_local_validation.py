"""Local validation end to end on real photos the model never trained on (issue 29, item 6).

A simulated site: MSID's held-out mpox photos, framed as a kit user frames a lesion, and one
look-alike collection (idscabies' scabies) as the site's negatives, each split into a calibration
half and a test half by source group (MSID's near-duplicate groups; one group per idscabies photo).
The real daemon screens each half from a `dir://` source and saves every frame as a case; the
lab's results are imported; the kit reports; the calibration half is exported for training and
gives a site-calibrated bundle, signed and installed on the kit like any bundle; the test half is
screened with the default and with it, and reported.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.cases.store import CaseStore
from tests.conftest import MODELS, run_cli

pytestmark = pytest.mark.slow
DEFAULT = MODELS / (MODELS / "DEFAULT").read_text().strip()
PER_HALF = 22  # positives and negatives each: above the site calibration's 20


def _halves(msid: Path) -> dict[str, list[tuple[np.ndarray, str]]]:
    from train_host.collection_shift import lesion_crops
    from train_host.data import load_rgb

    split = json.loads((DEFAULT / "split.json").read_text())
    held = sorted(split["test"] + split["val"])
    mpox = [(split["files"][i], split["groups"][i]) for i in held]
    mpox = [(f, g) for f, g in mpox if f.startswith("mpox/")]
    scabies = sorted((msid.parent / "idscabies" / "scabies").iterdir())[: 2 * PER_HALF]
    halves: dict[str, list[tuple[np.ndarray, str]]] = {"calibration": [], "test": []}
    for half, parity in (("calibration", 0), ("test", 1)):
        pos = [f for f, g in mpox if g % 2 == parity][:PER_HALF]
        halves[half] += [(lesion_crops(load_rgb(msid / f))[0], "positive") for f in pos]
        neg = scabies[parity::2][:PER_HALF]
        halves[half] += [(load_rgb(p), "negative") for p in neg]
    return halves


def _screen(photos: list[tuple[np.ndarray, str]], bundle: Path, work: Path, keys: Path) -> Path:
    """The daemon screens the photos from dir://, saving every frame (one verdict per photo:
    no smoothing across patients); the lab's results imported by case number. Returns the
    state folder."""
    from device.config import from_flags
    from device.live.daemon import Daemon

    folder = work / "camera"
    folder.mkdir(parents=True)
    for i, (rgb, _) in enumerate(photos):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rgb[..., ::-1])
    cfg = from_flags(display="null", source=f"dir://{folder}", log_dir=str(work / "logs"),
                 state_dir=str(work / "state"), capture_every=1e-6, smoothing=1,
                 max_frames=len(photos), bundle=str(bundle), keys_dir=str(keys))  # fmt: skip
    daemon = Daemon(cfg)
    assert daemon.view.model.endswith(" signed") == (bundle.name == "current")
    assert daemon.run() == 0
    with CaseStore(work / "state", create=False) as store:
        saved = store.cases()
        first = cv2.imread(str(store.images / saved[0].frame_file))
    assert len(saved) == len(photos)  # one case per photo, in the source's order
    assert np.abs(first.astype(int) - photos[0][0][..., ::-1]).mean() < 3  # (JPEG)
    with (work / "lab.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "result", "test"])
        w.writerows([c.id, result, "pcr"] for c, (_, result) in zip(saved, photos, strict=True))
    cases(work / "state", "import-results", work / "lab.csv")
    return work / "state"


def cases(state: Path, *args) -> str:
    return run_cli("device.cli", "cases", "--state-dir", state, *args, timeout=300).stdout


def test_a_site_checks_exports_and_recalibrates_its_kit(msid, tmp_path):
    halves = _halves(msid)
    keys = tmp_path / "keys"
    keys.mkdir()
    state = _screen(halves["calibration"], DEFAULT, tmp_path / "calibration", keys)
    before = json.loads(cases(state, "report", "--json", "--png", tmp_path / "reliability.png"))
    assert before["n"] == 2 * PER_HALF and before["enough"]
    stick = tmp_path / "stick"
    stick.mkdir()
    cases(state, "export", "--training", stick, "--site", "clinic-a")
    # on the host, the site is a collection of the protocol, its mpox photos positives
    run_cli("train_host.cli", "collection-shift", "--bundle", DEFAULT, "--data", msid,
            "--collection", stick / "clinic-a", "--out", tmp_path / "cs", timeout=900)  # fmt: skip
    (row,) = json.loads((tmp_path / "cs" / "collection_shift.json").read_text())
    as_is = row["collections"]["clinic-a"]["as_is"]
    assert as_is["n"] == 2 * PER_HALF and as_is["positives"] == PER_HALF and 0 <= as_is["auc"] <= 1
    site_bundle = tmp_path / "bundle-clinic-a"
    run_cli("train_host.cli", "calibrate", "--site", stick / "clinic-a", "--bundle", DEFAULT,
            "--out", site_bundle, timeout=600)  # fmt: skip
    # ... signed on the host and installed on the kit like any bundle
    run_cli("device.cli", "bundle", "keygen", tmp_path / "release.key")
    (keys / "release.pub").write_bytes((tmp_path / "release.pub").read_bytes())
    run_cli("device.cli", "bundle", "sign", site_bundle, "--key", tmp_path / "release.key")
    store = tmp_path / "store"
    installed = run_cli("device.cli", "bundle", "--store", store, "--keys", keys, "install",
                        site_bundle, "--no-restart").stdout  # fmt: skip
    assert "signed by release.pub" in installed
    reports = {}
    for name, bundle in (("default", DEFAULT), ("site", store / "current")):
        test_state = _screen(halves["test"], bundle, tmp_path / f"test-{name}", keys)
        reports[name] = json.loads(cases(test_state, "report", "--json"))
    default, site = reports["default"], reports["site"]
    assert default["n"] == site["n"] == 2 * PER_HALF
    # the test half's cases were decided by the site's bundle, at its threshold
    made = json.loads((site_bundle / "manifest.json").read_text())
    rows = [
        json.loads(x)
        for x in cases(tmp_path / "test-site" / "state", "list", "--json").splitlines()
    ]
    assert {r["threshold"] for r in rows} == {made["threshold"]}
    assert {r["bundle_version"] for r in rows} == {made["model"]["version"]}
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok and all(r["positive"] == (r["smoothed_prob"] >= r["threshold"]) for r in ok)
    numbers = {"calibration": before, **reports, "site_threshold": made["threshold"]}
    (tmp_path / "numbers.json").write_text(json.dumps(numbers))
    keys = ("sensitivity", "specificity", "cannot_judge_rate")
    print(
        json.dumps(
            {k: {m: r[m] for m in keys} for k, r in numbers.items() if k != "site_threshold"}
        )
    )
