"""The "cannot judge" score (issue 16): the OOD parameters, the manifest field, the device's
refusal, and its error rates on real photographs with the committed default bundle."""

import io
import json
import shutil

import cv2
import numpy as np
import pytest

from benchmarks.ood import demo_frames, non_skin_images
from device import DeviceError
from device.bundle import default_bundle_dir, load_bundle
from device.ood import OodModel, from_bytes
from device.screener import Screener
from tests.conftest import MODELS, edit_manifest, run_cli
from train_host.data import load_dataset
from train_host.grouping import Split


def _model(seed=0, sizes=(3, 4), limit=2.0) -> OodModel:
    rng = np.random.default_rng(seed)
    precs = []
    for s in sizes:
        a = rng.normal(size=(s, s))
        precs.append(a @ a.T + s * np.eye(s))
    return OodModel(tuple(sizes), tuple(precs), np.array([2.0, 4.0][: len(sizes)]), limit)


def test_score_is_the_summed_normalised_mahalanobis_distance():
    m = _model()
    z = np.arange(7, dtype=float) / 7
    a, b = z[:3], z[3:]
    expect = a @ m.precisions[0] @ a / 2.0 + b @ m.precisions[1] @ b / 4.0
    assert m.score(z) == pytest.approx(expect)
    assert m.judgeable(m.limit) and not m.judgeable(m.limit * 1.01)
    back = from_bytes(m.to_bytes(), m.limit, "t")
    assert back.sizes == m.sizes and back.score(z) == pytest.approx(expect, rel=1e-6)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, match",
    [
        (b"not an npz", "not a readable"),
        (_npz(sizes=np.array([2]), refs=np.array([1.0])), "not a readable"),  # no precision
        (_npz(sizes=np.array([2]), refs=np.array([1.0]), precision_0=np.eye(3)), "2x2"),
        (_npz(sizes=np.array([2]), refs=np.array([0.0]), precision_0=np.eye(2)), "positive"),
        (_npz(sizes=np.array([2]), refs=np.array([1.0]), precision_0=np.eye(2) * np.nan), "2x2"),
        (_npz(sizes=np.array([5000]), refs=np.array([1.0]), precision_0=np.eye(2)), "fit"),
        (
            _npz(sizes=np.array([1]), refs=np.array([1.0]), precision_0=np.array([[object()]])),
            "not a readable",
        ),  # a pickled object array is never loaded
    ],
)
def test_malformed_ood_file_is_one_line(data, match):
    with pytest.raises(DeviceError, match=match):
        from_bytes(data, 1.0, "bundle/ood.npz")


@pytest.fixture(scope="module")
def default():
    bundle = load_bundle(default_bundle_dir())
    return bundle, Screener(bundle, bundle.select("onnx", "int8"), threads=2)


def test_default_bundle_carries_a_versioned_ood_field(default):
    bundle, screener = default
    m = bundle.manifest
    assert m["ood"]["version"] == 1 and m["ood"]["file"] == "ood.npz"
    assert m["outputs"]["features"]["shape"] == [1, screener.ood.dim]
    assert screener.ood.sizes[0] < screener.ood.dim  # a mid-level layer and the head's
    for f in m["files"].values():  # every file refuses (nearly) what the fp32 model refuses
        assert f["metrics"]["ood_agreement"] >= 0.97


def _rate(screener, images) -> float:
    return float(np.mean([not screener.predict(im).judgeable for im in images]))


def test_default_refuses_non_skin_photographs_and_judges_lesions(default, msid):
    """The measured rates (benchmarks/results/ood.md) with margin: most non-skin photographs and
    every demo frame refused; lesion photos of MSID's held-out split and of the collections it
    never saw judged."""
    bundle, screener = default
    assert _rate(screener, list(non_skin_images().values())) >= 0.70
    assert _rate(screener, list(demo_frames(4).values())) == 1.0
    held = Split.load(bundle.root / "split.json").part(load_dataset(msid, "binary"), "test")
    assert _rate(screener, held.images) <= 0.15
    ids = load_dataset(msid.parent / "idscabies", "binary", allow_no_positive=True)
    assert _rate(screener, ids.images[::3]) <= 0.10


def test_bundle_without_ood_judges_everything():
    """Bundles exported before the field still load, and are never refused."""
    old = load_bundle(MODELS / "micrompoxnet-binary")
    assert "ood" not in old.manifest
    screener = Screener(old, old.select("onnx", "int8"))
    pred = screener.predict(non_skin_images()["skimage/coffee"])
    assert screener.ood is None and pred.judgeable and pred.ood_score is None
    assert "ood_score" not in pred.as_dict() and "label" in pred.as_dict()


@pytest.fixture
def copy(tmp_path):
    src = default_bundle_dir()
    out = tmp_path / "b"
    out.mkdir()
    m = json.loads((src / "manifest.json").read_text())
    m["files"] = {"model.int8.onnx": m["files"]["model.int8.onnx"]}
    for name in ("model.int8.onnx", "ood.npz"):
        shutil.copy(src / name, out / name)
    (out / "manifest.json").write_text(json.dumps(m))
    return out


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m["ood"].update(version=2), "version 2"),
        (lambda m: m["ood"].update(file="../ood.npz"), "plain .npz"),
        (lambda m: m["ood"].update(file="ood.pkl"), "plain .npz"),
        (lambda m: m["ood"].update(limit=float("nan")), "limit"),
        (lambda m: m["ood"].update(limit=-1), "limit"),
        (lambda m: m["outputs"].pop("features"), "features"),
        (lambda m: m["ood"].pop("sha256"), "sha256"),
    ],
)
def test_hostile_ood_field_is_refused(copy, change, match):
    edit_manifest(copy, change)
    with pytest.raises(DeviceError, match=match):
        load_bundle(copy)


def test_edited_ood_file_is_refused(copy):
    data = bytearray((copy / "ood.npz").read_bytes())
    data[-100] ^= 1
    (copy / "ood.npz").write_bytes(bytes(data))
    with pytest.raises(DeviceError, match=r"ood\.npz does not match its sha256"):
        load_bundle(copy)


def test_ood_parameters_must_fit_the_model_output(copy):
    m = OodModel((3,), (np.eye(3),), np.ones(1), 1.0)
    (copy / "ood.npz").write_bytes(m.to_bytes())
    import hashlib

    def fix(man):
        data = (copy / "ood.npz").read_bytes()
        man["ood"].update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    edit_manifest(copy, fix)
    bundle = load_bundle(copy)
    with pytest.raises(DeviceError, match="need 3"):
        Screener(bundle, bundle.select("onnx", "int8"))


def test_classify_says_cannot_judge(tmp_path):
    photo = tmp_path / "coffee.png"
    cv2.imwrite(str(photo), cv2.cvtColor(non_skin_images()["skimage/coffee"], cv2.COLOR_RGB2BGR))
    proc = run_cli("device.cli", "classify", "--json", photo)
    row = json.loads(proc.stdout)
    assert row["status"] == "cannot_judge" and row["ood_score"] > row["ood_limit"]
    assert "label" not in row and "prob" not in row
    text = run_cli("device.cli", "classify", photo).stdout
    assert "no verdict, cannot judge: not a skin-lesion photo" in text
