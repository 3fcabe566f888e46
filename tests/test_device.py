"""The device side on real images and a real exported bundle: manifest validation, the
preprocessing contract with the host, and `mpox-screen classify` as a user runs it."""

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import MODELS, edit_manifest, run_cli

from device import DeviceError
from device.core.bundle import load_bundle
from device.core.images import UnreadableImage, read_rgb
from device.core.preprocess import preprocess as device_preprocess
from device.core.verdict import decide
from train_host.data import load_dataset, load_rgb
from train_host.preprocess import PreprocessSpec
from train_host.preprocess import preprocess as host_preprocess


def classify(*args, ok=True):
    return run_cli("device.cli", "classify", *args, ok=ok)


@pytest.fixture
def copy_bundle(bundle, tmp_path):
    def make():
        out = tmp_path / "bundle"
        shutil.copytree(bundle, out)
        return out

    return make


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(schema="mpox-screen-bundle/9"), "unknown schema"),
        (lambda m: m.pop("threshold"), "missing key 'threshold'"),
        (lambda m: m["input"].pop("mean"), "missing key 'mean'"),
        (lambda m: m["files"]["model.int8.onnx"].pop("sha256"), "missing key 'sha256'"),
        (lambda m: m.update(positive_class="cowpox"), "positive class"),
    ],
)
def test_invalid_manifest_is_refused_in_one_line(copy_bundle, change, message):
    root = copy_bundle()
    edit_manifest(root, change)
    with pytest.raises(DeviceError, match=message):
        load_bundle(root)
    proc = classify("--bundle", root, root, ok=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_tampered_or_missing_file_is_refused(copy_bundle):
    root = copy_bundle()
    data = bytearray((root / "model.int8.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "model.int8.tflite").write_bytes(bytes(data))
    with pytest.raises(DeviceError, match=r"model\.int8\.tflite does not match its sha256"):
        load_bundle(root)
    (root / "model.int8.tflite").unlink()
    with pytest.raises(DeviceError, match=r"model\.int8\.tflite is missing"):
        load_bundle(root)
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(DeviceError, match="not valid JSON"):
        load_bundle(root)


@pytest.mark.parametrize("constancy", ["none", "shades_of_grey"])
def test_device_preprocessing_equals_host_on_real_images(msid, bundle, constancy):
    spec = {**load_bundle(bundle).input, "colour_constancy": constancy}
    keys = ("size", "mean", "std", "resize", "crop", "colour_order", "colour_constancy")
    host_spec = PreprocessSpec.from_dict({k: spec[k] for k in keys})
    data = load_dataset(msid, "multiclass", limit_per_class=5)
    for path, image in zip(data.paths, data.images, strict=True):
        np.testing.assert_array_equal(read_rgb(path), image)  # same decoded pixels
        host = host_preprocess(image, host_spec)
        np.testing.assert_array_equal(device_preprocess(image, spec, "NCHW")[0], host)
        nhwc = device_preprocess(image, spec, "NHWC")[0]
        np.testing.assert_array_equal(nhwc, host.transpose(1, 2, 0))


def test_read_rgb_matches_host_on_odd_files(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 2] = 200  # red in BGRA
    rgba[:10, :, 3] = 255  # top half opaque, bottom half transparent
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    grey = np.arange(600, dtype=np.uint8).reshape(20, 30)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    for name in ("a.png", "g.png"):
        np.testing.assert_array_equal(read_rgb(tmp_path / name), load_rgb(tmp_path / name))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(UnreadableImage):
        read_rgb(tmp_path / "bad.jpg")


def test_decide_uses_the_threshold_then_the_likeliest_other_class():
    probs = np.array([0.5, 0.3, 0.2])  # chickenpox, measles, mpox
    assert decide(probs, positive=2, threshold=0.15) == 2
    assert decide(probs, positive=2, threshold=0.25) == 0


@pytest.fixture(scope="module")
def photos(msid, tmp_path_factory):
    """60 held-out images of the committed split, in nested folders, plus one broken file."""
    s = json.loads((MODELS / "micrompoxnet-binary" / "split.json").read_text())
    root = tmp_path_factory.mktemp("photos")
    for i in s["test"][:60]:
        rel = s["files"][i]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(msid / rel, root / rel)
    (root / "mpox" / "broken.png").write_bytes(b"\x89PNG truncated")
    return root


def json_lines(proc):
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_classify_json_with_both_backends(bundle, photos, tmp_path):
    rows = {}
    for backend in ("onnx", "tflite"):
        proc = classify(
            "--bundle",
            bundle,
            "--backend",
            backend,
            "--json",
            "--cam-out",
            tmp_path / backend,
            photos,
            ok=False,
        )
        assert proc.returncode == 1, proc.stderr  # one unreadable image
        lines = json_lines(proc)
        errors = [r for r in lines if "error" in r]
        assert [r["path"] for r in errors] == [str(photos / "mpox" / "broken.png")]
        ok = [r for r in lines if r.get("status") == "ok"]
        poor = [r for r in lines if r.get("status") == "poor_quality"]
        odd = [r for r in lines if r.get("status") == "cannot_judge"]
        assert len(ok) + len(poor) + len(odd) == 60
        assert len(poor) <= 6 and len(odd) <= 12  # the gates refuse few real photos
        for r in poor + odd:
            assert r["guidance"] and "label" not in r and "prob" not in r
        for r in odd:  # unlike the training photos, or no skin colour in the square (grey)
            assert r["ood_score"] > r["ood_limit"] > 0 or r["skin"] < r["min_skin"]
        for r in ok:
            assert set(r) >= {"path", "label", "prob", "probs", "latency_ms"}
            assert r["label"] in ("mpox", "other") and set(r["probs"]) == {"other", "mpox"}
            assert 0 <= r["prob"] <= 1 and r["prob"] == r["probs"]["mpox"]
            assert r["latency_ms"] > 0
        rows[backend] = {r["path"]: r for r in ok}
        assert len(list((tmp_path / backend).glob("*.cam.png"))) == len(ok)
    both = [p for p in rows["onnx"] if p in rows["tflite"]]  # judged by both runtimes
    assert len(both) >= 0.9 * len(rows["onnx"])
    same = [rows["onnx"][p]["label"] == rows["tflite"][p]["label"] for p in both]
    assert np.mean(same) >= 0.95  # >= 99 % over all 201 held-out images: test_committed_models
    truth = {p: p.split("/")[-2] == "mpox" for p in rows["onnx"]}
    hits = np.mean([(rows["onnx"][p]["label"] == "mpox") == t for p, t in truth.items()])
    assert hits > 0.7  # a real screening model, not noise


def test_classify_text_output_and_errors(bundle, photos, tmp_path):
    one = next(p for p in sorted((photos / "mpox").glob("*.png")) if p.name != "broken.png")
    proc = classify("--bundle", bundle, one)
    assert "Mpox likely" in proc.stdout or "Mpox unlikely" in proc.stdout
    measles = sorted((photos / "measles").glob("*.png"))
    proc = classify("--bundle", MODELS / "micrompoxnet-4class", *measles)
    assert "(likeliest: " in proc.stdout  # a 4-class bundle names the other class
    proc = classify("--bundle", bundle, one, tmp_path / "nowhere.png", ok=False)
    assert proc.returncode == 1 and "nowhere.png: skipped" in proc.stderr
    assert "likely" in proc.stdout  # the readable image was still screened
    (tmp_path / "empty").mkdir()
    proc = classify("--bundle", bundle, tmp_path / "empty", ok=False)
    assert proc.returncode == 2 and "no images found" in proc.stderr
    proc = classify("--bundle", tmp_path, one, ok=False)
    assert proc.returncode == 2 and "not a model bundle" in proc.stderr
    proc = classify("--bundle", bundle, "--threads", "0", one, ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "spoil, problem, guidance",
    [
        (
            lambda im: cv2.GaussianBlur(im, (0, 0), 4 * min(im.shape[:2]) / 224),
            "blur",
            "Hold steady",
        ),
        (lambda im: (im * 0.1).astype(np.uint8), "dark", "More light"),
        (lambda im: np.clip(im * 4.0, 0, 255).astype(np.uint8), "bright", "Too bright"),
    ],
)
def test_quality_gate_gives_guidance_not_a_verdict(
    bundle, photos, tmp_path, spoil, problem, guidance
):
    one = next(p for p in sorted((photos / "mpox").glob("*.png")) if p.name != "broken.png")
    bad = tmp_path / "spoilt.png"
    cv2.imwrite(str(bad), spoil(cv2.imread(str(one)).astype(np.float32)).astype(np.uint8))
    (row,) = json_lines(classify("--bundle", bundle, "--json", bad))
    assert row["status"] == "poor_quality" and row["problem"] == problem
    assert row["guidance"] == guidance and "label" not in row
    text = classify("--bundle", bundle, bad).stdout
    assert f"no verdict, poor quality ({problem}): {guidance}" in text
    args = ("--no-quality-gate", "--no-ood-gate")  # a dark or glaring frame is unlike any photo
    (forced,) = json_lines(classify("--bundle", bundle, "--json", *args, bad))
    assert forced["status"] == "ok" and forced["label"] in ("mpox", "other")


def test_device_never_imports_torch_onnx_or_host(bundle, photos):
    code = (
        "import sys; from device.cli import main; "
        f"rc = main(['classify', '--bundle', {str(bundle)!r}, '--backend', 'tflite', "
        f"{str(photos / 'chickenpox')!r}]); "
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'train_host'}); "
        "print('BAD', bad); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "BAD []" in proc.stdout
