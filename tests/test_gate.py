"""The "cannot judge" gate of every collection and skin tone (issue 28, item 2), on real photos:
the darkening test with the committed default, and `mpox-train gate` (fit on the bundle's own
int8 features, leave-one-collection-out report, a new bundle version)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.ood import non_skin_images
from device.core.bundle import default_bundle_dir, load_bundle
from device.core.screener import Screener
from device.core.skin_tone import darken, ita
from tests.conftest import one_line_error, run_cli
from train_host.data import load_dataset, trains_probe
from train_host.grouping import Split
from train_host.lesion_gate import object_photos

pytestmark = pytest.mark.slow
DARKEST = -40.0  # ITA in degrees: the darkening test goes at least this far (issue 28)


@pytest.fixture(scope="module")
def default():
    bundle = load_bundle(default_bundle_dir())
    return bundle, Screener(bundle, bundle.select("onnx", "int8"), threads=2)


def test_darker_skin_never_turns_a_judged_mpox_photo_into_cannot_judge(default, msid):
    """Metamorphic: each held-out MSID mpox photo the default judges, darkened in Lab lightness
    step by step until its ITA is at most -40 deg, is judged at every step; while a grey frame, a
    page of text and the library's non-skin photographs are still refused."""
    bundle, screener = default
    held = Split.load(bundle.root / "split.json").part(load_dataset(msid, "binary"), "test")
    mpox = [im for im, y in zip(held.images, held.binary_targets(), strict=True) if y == 1]
    judged = [im for im in mpox if screener.predict(im).judgeable]
    assert len(judged) >= 30
    reached = 0
    for i, rgb in enumerate(judged):
        factor = 1.0
        while (angle := ita(darken(rgb, factor))) is not None and angle > DARKEST:
            factor *= 0.85
            assert screener.predict(darken(rgb, factor)).judgeable, (i, round(factor, 3))
            if factor < 0.2:
                break
        reached += angle is not None and angle <= DARKEST
    assert reached >= 0.9 * len(judged)  # the steps went down to ITA -40 on nearly every photo
    grey = np.full((480, 640, 3), 128, np.uint8)
    library = non_skin_images()
    assert not screener.predict(grey).judgeable
    assert not screener.predict(library["skimage/text"]).judgeable
    refused = [not screener.predict(im).judgeable for im in library.values()]
    assert np.mean(refused) >= 0.90


def test_gate_command_judges_each_collection_left_out_and_writes_a_new_version(msid, tmp_path):
    """`mpox-train gate` (every 8th reference photo): a row per look-alike collection left out
    and per the bundle's own gate, rates with intervals, the JSON/Markdown/PNG report; the new
    bundle loads, carries the version 2 gate with its centre, and its model files are the
    default's byte for byte. An existing --out is refused before any work, in one line."""
    report, out = tmp_path / "r" / "loco", tmp_path / "b"
    args = ("--bundle", default_bundle_dir(), "--data", msid, "--stride", "8", "--report", report)
    run_cli("train_host.cli", "gate", *args, "--out", out)
    doc = json.loads(report.with_suffix(".json").read_text())
    fits = [(r["fit"], r["left_out"]) for r in doc["rows"]]
    collections = {"bites", "bites-ny", "idscabies", "skin8"}
    assert {c for f, c in fits if f == "without it"} == collections
    assert {c for f, c in fits if f == "its own"} == collections
    assert ("every collection", None) in fits
    held_objects = len(object_photos(msid)[1])  # the half the lesion check never learns from
    for r in doc["rows"]:
        objects = r["objects"]["not_likely"]
        assert (
            objects["n"] == held_objects and objects["low"] <= objects["value"] <= objects["high"]
        )
        assert set(r["darkened_mpox_refused"]) == {"0.8", "0.65", "0.5"}
    assert report.with_suffix(".png").stat().st_size > 10_000
    assert "leave one collection out" in report.with_suffix(".md").read_text()
    new, old = load_bundle(out), load_bundle(default_bundle_dir())
    shipped = next(r for r in doc["rows"] if r["fit"] == "every collection")
    assert new.manifest.ood.limit == pytest.approx(shipped["limit"])
    assert new.manifest.document["ood"]["version"] == 3 and new.ood().means is not None
    assert new.ood().probe is not None  # the lesion check, refitted too
    assert new.manifest.document["model"]["version"].startswith(
        old.manifest.document["model"]["version"] + "+gate."
    )
    for f in old.manifest.files:
        assert (out / f.file).read_bytes() == (old.root / f.file).read_bytes()
        assert new.manifest.document["files"][f.file]["metrics"]["ood_firm_agreement"] >= 0.95
    assert "`mpox-train gate`" in (out / "card.md").read_text()
    proc = run_cli("train_host.cli", "gate", *args, "--out", out, ok=False)
    assert "exists" in one_line_error(proc)


def test_gate_of_a_checkpoint_is_fitted_before_export_and_judged_the_same_way(msid, tmp_path):
    """`mpox-train gate --checkpoint` on the fp32 graph: the same leave-one-out report, and the
    stored gate (feature scale and score) is the report's fit on every collection."""
    from tests.conftest import MODELS
    from train_host.ood import load_gate

    ckpt = MODELS / "micrompoxnet-binary" / "checkpoint.pt"
    report, out = tmp_path / "loco", tmp_path / "ckpt.gate.npz"
    run_cli(
        "train_host.cli",
        "gate",
        "--checkpoint",
        ckpt,
        "--data",
        msid,
        "--stride",
        "20",
        "--report",
        report,
        "--out",
        out,
    )
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["model"] == "micrompoxnet-binary"
    assert {r["left_out"] for r in doc["rows"] if r["fit"] == "without it"} == {
        "bites",
        "bites-ny",
        "idscabies",
        "skin8",
    }
    shipped = next(r for r in doc["rows"] if r["fit"] == "every collection")
    gate = load_gate(out, ckpt)
    assert gate.model.limit == pytest.approx(shipped["limit"]) and gate.model.means is not None
    assert gate.mean.shape == gate.std.shape == (gate.model.dim,)  # the lesion check's too
    assert gate.model.probe is not None and gate.model.dim == sum(gate.model.sizes) + 1280


def test_the_lesion_check_learns_from_half_the_objects_and_is_judged_on_the_other(msid):
    """`nonskin/objects` halved by a hash of each photo's name: the halves are disjoint, each
    about half, the same on every call, and nothing else in nonskin/ (plain skin) trains it."""
    train, held = object_photos(msid)
    keys = [k for _, k, _ in train]
    assert len(train) + len(held) == 156  # every photo, the BMPs too (the kit reads them)
    assert 0.35 <= len(train) / 156 <= 0.65
    assert all(k.startswith("nonskin/objects/") for k in keys) and len(set(keys)) == len(keys)
    again, held_again = object_photos(msid)
    assert [k for _, k, _ in again] == keys and len(held_again) == len(held)
    assert all(trains_probe(k) for k in keys)
