"""Kit framing, LP-FT's linear probe and the collection-shift protocol on real images."""

import copy
import json
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import MODELS, run_cli
from train_host import collection_shift as cs
from train_host.augment import RandomLesionCrop, RandomText
from train_host.kitframe import lesion_crops, lesion_peaks
from train_host.models import create_model
from train_host.probe import fit_head, freeze_batchnorm


def _skin_with_spot(y: int, x: int, size: int = 200) -> np.ndarray:
    """Even skin tone with one red papule at (y, x) and a dark background stripe on the left."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = (205, 150, 125)
    img[:, :30] = (30, 60, 200)  # a blue sleeve: a strong colour edge that is not a lesion
    yy, xx = np.mgrid[:size, :size]
    spot = (yy - y) ** 2 + (xx - x) ** 2 < 8**2
    img[spot] = (190, 60, 70)
    return img


def test_lesion_peak_is_the_spot_not_the_sleeve_edge():
    img = _skin_with_spot(120, 140)
    y, x = lesion_peaks(img, k=1)[0]
    assert abs(y - 120) <= 6 and abs(x - 140) <= 6


def test_lesion_crops_are_tight_squares_around_the_spot():
    img = _skin_with_spot(60, 150)
    crops = lesion_crops(img, fractions=(0.4,), k=1)
    assert len(crops) == 1 and crops[0].shape == (80, 80, 3)
    reds = np.nonzero((crops[0][..., 1] < 100) & (crops[0][..., 0] > 150))
    assert len(reds[0]) > 100  # the papule is inside the crop


def test_random_lesion_crop_and_text_change_views():
    torch.manual_seed(0)
    img = torch.from_numpy(_skin_with_spot(100, 100)).permute(2, 0, 1).contiguous()
    crop = RandomLesionCrop(p=1.0)(img)
    assert crop.shape[1] == crop.shape[2] < 200
    text = RandomText(p=1.0)(img)
    assert text.shape == img.shape and (text != img).any()
    assert RandomText(p=0.0)(img).equal(img)


def test_linear_probe_head_reproduces_the_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(80, 16)) * 3 + 5
    labels = (feats[:, 0] + rng.normal(size=80) > 5).astype(int)
    model = create_model("micrompoxnet", 2, 64, width=0.25)
    model.fc = torch.nn.Linear(16, 2)
    with torch.no_grad():
        assert fit_head(model, feats, labels) > 0.8
        p = torch.softmax(model.fc(torch.as_tensor(feats, dtype=torch.float32)), 1)[:, 1].numpy()
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    ref = LogisticRegression(C=0.1, class_weight="balanced", max_iter=3000)
    ref = ref.fit((feats - mu) / sd, labels).predict_proba((feats - mu) / sd)[:, 1]
    assert np.allclose(p, ref, atol=1e-4)


def test_freeze_batchnorm_keeps_running_statistics():
    model = create_model("micrompoxnet", 2, 64, width=0.25)
    model.train()
    freeze_batchnorm(model)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    model(torch.randn(4, 3, 64, 64) * 5 + 3)
    assert torch.equal(before, bn.running_mean) and not bn.weight.requires_grad


def test_temperature_scaling_recovers_a_known_temperature():
    from train_host.calibrate import fit_temperature, scaled

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (4000, 1)) * np.array([[-1.0, 1.0]])
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = (rng.random(4000) < true_p[:, 1]).astype(int)
    overconfident = scaled(true_p, 1 / 3.0)  # logits x 3
    assert fit_temperature(overconfident, labels) == pytest.approx(3.0, rel=0.15)
    assert np.allclose(scaled(overconfident, 3.0), true_p, atol=1e-3)


def test_split_part_and_extra_negatives(small_msid, collections):
    from train_host.data import load_dataset, with_extra_negatives
    from train_host.grouping import make_split, near_duplicate_groups

    data = load_dataset(small_msid)
    groups = near_duplicate_groups(data.images)
    split = make_split(data.relpaths(), data.labels, groups, 0, 0.2, 0.2)
    val = split.part(data, "val")
    assert len(val) == len(split.val) and set(val.relpaths()) <= set(data.relpaths())
    more = with_extra_negatives(val, [collections / "skin8"])
    assert len(more) == len(val) + 18 and more.binary_targets()[len(val) :].sum() == 0
    assert min(min(im.shape[:2]) for im in more.images[len(val) :]) <= 320


def test_specificity_interval_and_grouped_auc():
    y = np.array([0] * 20 + [1] * 10)
    p = np.r_[np.linspace(0, 0.6, 20), np.linspace(0.4, 1, 10)]
    m = cs.at_threshold(y, p, 0.5, groups=np.arange(30) // 2)
    assert m["specificity"] == pytest.approx(16 / 20)
    lo, hi = m["specificity_ci95"]
    assert lo < 16 / 20 < hi and hi - lo > 0.2  # 20 negatives: a wide interval
    assert m["auc_ci95"][0] <= m["auc"] <= m["auc_ci95"][1]
    neg_only = cs.at_threshold(np.zeros(5, int), np.array([0.1, 0.2, 0.7, 0.8, 0.9]), 0.5)
    assert neg_only["specificity"] == pytest.approx(0.4) and np.isnan(neg_only["auc"])
    assert neg_only["flagged"] == pytest.approx(0.6)


@pytest.fixture(scope="module")
def collections(msid, tmp_path_factory):
    """The real other collections beside MSID (they must be there when MSID is)."""
    found = {c.name: c for c in cs.other_collections(msid)}
    # the four look-alike collections; nonskin/ (the gate's development set) is never one
    assert set(found) == {"bites", "bites-ny", "idscabies", "skin8"}, f"beside {msid}: {found}"
    small = tmp_path_factory.mktemp("collections")
    for name in ("idscabies", "skin8"):  # a few photos of every class keep the test quick
        for cls in sorted(d for d in found[name].iterdir() if d.is_dir()):
            (small / name / cls.name).mkdir(parents=True)
            for f in sorted(cls.iterdir())[:6]:
                shutil.copy(f, small / name / cls.name / f.name)
    return small


def test_negative_only_collection_loads_as_binary(collections):
    data = cs.load_collection(collections / "skin8")
    assert data.class_names == ["other", "mpox"] and len(data) == 18
    assert not data.binary_targets().any()


@pytest.mark.slow
def test_collection_shift_cli_on_a_shipped_bundle(msid, collections, tmp_path):
    out = tmp_path / "cs"
    proc = run_cli(
        "train_host.cli", "collection-shift", "--bundle", MODELS / "micrompoxnet-binary",
        "--data", msid, "--collection", collections / "idscabies",
        "--collection", collections / "skin8", "--out", out,
    )  # fmt: skip
    assert "kit-framing AUC" in proc.stdout
    (r,) = json.loads((out / "collection_shift.json").read_text())
    assert r["model"] == "micrompoxnet-binary"
    assert r["kit_framing"]["n"] > 2 * r["msid_heldout"]["n"]  # several crops per photo
    for name in ("idscabies", "skin8"):
        c = r["collections"][name]
        assert c["as_is"]["positives"] == 0 and 0 <= c["as_is"]["specificity"] <= 1
        assert 0 < c["kit_mpox_vs"]["auc"] < 1
        # per condition (source folder): 6 photos each, adding up to the collection's numbers
        conds = c["conditions"]
        assert set(conds) == {d.name for d in (collections / name).iterdir() if d.is_dir()}
        assert all(m["n"] == 6 and m["positives"] == 0 for m in conds.values())
        spec = np.mean([m["specificity"] for m in conds.values()])
        assert spec == pytest.approx(c["as_is"]["specificity"])
    msid_conds = r["msid_conditions"]
    assert set(msid_conds) == {"chickenpox", "measles", "mpox", "normal"}
    assert sum(m["n"] for m in msid_conds.values()) == r["msid_heldout"]["n"]
    assert msid_conds["mpox"]["positives"] == msid_conds["mpox"]["n"] == 74
    assert msid_conds["mpox"]["sensitivity"] == pytest.approx(r["msid_heldout"]["sensitivity"])
    table = (out / "collection_shift.md").read_text()
    assert "| micrompoxnet-binary |" in table and "spec. on skin8" in table
    assert "| model | MSID held-out: chickenpox (n=" in table
    assert "idscabies: healthy (n=6)" in table
    by_condition = table.split("by condition")[1].split("At the threshold, by skin")[0]
    condition_row = by_condition.strip().splitlines()[-1]
    assert condition_row.startswith("| micrompoxnet-binary | ") and condition_row.count("|") == 12
    tones = table.split("by skin tone")[1]  # every set per tone, adding up to the set
    for name, n in (("idscabies", 18), ("skin8", 18), ("MSID held-out photos", 201)):
        counts = [int(x.split("|")[4]) for x in tones.splitlines() if f"| {name} |" in x]
        assert sum(counts) == n, (name, counts)
    assert sum(m["n"] for m in r["kit_tones"].values()) == r["kit_framing"]["n"]
    assert (out / "collection_shift.png").stat().st_size > 5000
    # rows of earlier runs join a table; a row that scored other collections is refused
    r2 = {**r, "model": "an earlier run", "kit_framing": {**r["kit_framing"], "auc": 0.5}}
    (tmp_path / "earlier.json").write_text(json.dumps([r2]))
    both = tmp_path / "both"
    run_cli(
        "train_host.cli", "collection-shift", "--include", out / "collection_shift.json",
        "--include", tmp_path / "earlier.json", "--data", msid,
        "--collection", collections / "idscabies", "--collection", collections / "skin8",
        "--out", both,
    )  # fmt: skip
    rows = json.loads((both / "collection_shift.json").read_text())
    assert [x["model"] for x in rows] == ["micrompoxnet-binary", "an earlier run"]
    lines = (both / "collection_shift.md").read_text().splitlines()
    assert lines[3].startswith("| an earlier run | 0.50 |")  # the rule's order: worst kit AUC
    proc = run_cli(
        "train_host.cli", "collection-shift", "--include", out / "collection_shift.json",
        "--data", msid, "--collection", collections / "skin8", "--out", both, ok=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "does not score skin8" in proc.stderr


@pytest.mark.slow
def test_collection_shift_needs_a_model(tmp_path):
    proc = run_cli("train_host.cli", "collection-shift", "--out", tmp_path, ok=False)
    assert proc.returncode == 2 and "takes --checkpoint" in proc.stderr
    one = MODELS / "micrompoxnet-binary" / "checkpoint.pt"
    proc = run_cli(
        "train_host.cli", "collection-shift", "--ensemble", one, "--out", tmp_path, ok=False
    )
    assert proc.returncode == 2 and "at least two" in proc.stderr


@pytest.mark.slow
def test_an_ensemble_is_scored_as_one_model_at_a_kit_framed_threshold(msid):
    """--ensemble: the mean P(mpox) of the members, its threshold chosen for sensitivity >= 0.95
    on the kit-framed crops of the validation photos (members' own thresholds do not apply)."""
    from train_host.export.exporter import validation

    names = ("micrompoxnet-binary", "micrompoxnet-distilled-binary")
    paths = [MODELS / n / "checkpoint.pt" for n in names]
    val = validation(cs.load_dataset(msid, "binary"), paths[0])
    ensemble = cs.ensemble_scorer(paths, val)
    assert ensemble.name == f"ensemble({names[0]} + {names[1]})"
    members = [cs.checkpoint_scorer(p) for p in paths]
    some = val.images[:6]
    np.testing.assert_allclose(
        ensemble.score(some), (members[0].score(some) + members[1].score(some)) / 2, rtol=1e-6
    )
    crops, owner = cs.kit_framed(val.images)
    p, y = ensemble.score(crops), val.binary_targets()[owner]
    assert (p[y == 1] >= ensemble.threshold).mean() >= 0.95
    assert ensemble.threshold not in (members[0].threshold, members[1].threshold)


@pytest.mark.slow
@pytest.mark.training
def test_collection_shift_under_cv(msid, collections, tmp_path):
    """A cv folder's folds each scored on their own held-out part: mean and t-interval."""
    cv = tmp_path / "cv-run"
    for fold in ("fold1", "fold2"):
        (cv / fold).mkdir(parents=True)
        for f in ("checkpoint.pt", "split.json", "metrics.json"):
            shutil.copy(MODELS / "micrompoxnet-binary" / f, cv / fold / f)
        (cv / fold / "checkpoint.pt").rename(cv / fold / "best.pt")
    msid_data = cs.load_dataset(msid, "binary")
    sets = {n: cs.load_collection(collections / n) for n in ("idscabies", "skin8")}
    r = cs.cv_protocol(cv, msid_data, sets)
    assert r["model"] == "cv-run (CV, 2 folds)" and r["folds"] == 2
    lo, hi = r["kit_framing"]["auc_ci95"]
    assert lo == pytest.approx(hi) == pytest.approx(r["kit_framing"]["auc"])  # identical folds
    assert r["collections"]["skin8"]["as_is"]["n"] == 2 * 18
    assert r["collections"]["skin8"]["conditions"]["impetigo"]["n"] == 2 * 6
    assert r["msid_conditions"]["mpox"]["sensitivity_ci95"][0] == pytest.approx(
        r["msid_conditions"]["mpox"]["sensitivity"]
    )  # identical folds: a zero-width interval, so the conditions were averaged over folds
    assert 0 < cs.worst_auc(r) <= r["kit_framing"]["auc"]


@pytest.mark.slow
def test_a_collection_trained_on_is_shown_not_judged(small_msid, collections, tmp_path):
    """A model trained with --extra-negatives records the collections it saw; the protocol
    marks them, and the selection rule and the worst kit AUC leave them out."""
    from tests.conftest import fast_config
    from train_host.data import load_dataset
    from train_host.evaluate import calibrate_and_evaluate
    from train_host.grouping import make_split, near_duplicate_groups
    from train_host.train import Trainer

    data = load_dataset(small_msid, "binary")
    split = make_split(
        data.relpaths(), data.labels, near_duplicate_groups(data.images), 0, 0.25, 0.25
    )
    cfg = fast_config(epochs=1, extra_negatives=[str(collections / "skin8")])
    best = Trainer(cfg, data, split, tmp_path / "neg").run()
    test = split.part(data, "test")
    calibrate_and_evaluate(best, split.part(data, "val"), test, tmp_path / "neg")
    scorer = cs.checkpoint_scorer(best)
    assert scorer.trained_on == {"skin8"}
    sets = {n: cs.load_collection(collections / n) for n in ("idscabies", "skin8")}
    r = cs.run_protocol(scorer, test, sets)
    seen = {n: c["trained_on"] for n, c in r["collections"].items()}
    assert seen == {"idscabies": False, "skin8": True}
    vs = {n: c["kit_mpox_vs"]["auc"] for n, c in r["collections"].items()}
    assert cs.worst_auc(r) == min(r["kit_framing"]["auc"], vs["idscabies"])
    # a seen collection with the worst numbers of the row does not decide where the row sorts
    r["collections"]["skin8"]["kit_mpox_vs"]["auc"] = 0.0
    r["collections"]["skin8"]["as_is"]["specificity"] = 0.0
    assert cs.selection_key(r)[:3] == (
        1,
        round(min(r["kit_framing"]["auc"], vs["idscabies"]), 2),
        round(r["collections"]["idscabies"]["as_is"]["specificity"], 2),
    )
    # ... but the row ranks after one that left every collection out, even one far worse (the
    # same numbers with skin8 left out: its 0.00 now judged)
    weaker = copy.deepcopy(r)
    weaker["collections"]["skin8"]["trained_on"] = False
    assert cs.worst_auc(weaker) < cs.worst_auc(r)
    assert max([r, weaker], key=cs.selection_key) is weaker
    from train_host.collection_report import markdown

    assert "[trained on: 0.00 (" in markdown([r], ["idscabies", "skin8"])
