"""`mpox-train export` round trip with the real exporters and runtimes (ONNX Runtime, LiteRT):
parity with PyTorch, the in-graph CAM against captum, int8 scales, the gate and the manifest."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam
from conftest import MODELS, one_line_error, run_cli

from device import DeviceError
from device.core.bundle import load_bundle, sha256
from device.core.runtimes import open_runtime
from device.core.runtimes.litert import dequantize, quantize
from device.core.screener import Screener
from train_host import UserError
from train_host.checkpoint import load_model, preprocess_spec
from train_host.data import load_dataset
from train_host.export import gate, onnx_export, tflite_export
from train_host.export.exporter import (
    ExportRequest,
    calibration_images,
    export_bundle,
    input_range,
    split_parts,
)
from train_host.models.camgraph import wrap
from train_host.preprocess import preprocess

pytestmark = pytest.mark.slow
CKPT = MODELS / "micrompoxnet-binary" / "checkpoint.pt"


@pytest.fixture(scope="module")
def torch_model():
    model, ckpt = load_model(CKPT)
    return model, ckpt, preprocess_spec(ckpt)


@pytest.fixture(scope="module")
def images(msid):
    return load_dataset(msid, "binary", limit_per_class=12).images[::4]


def test_manifest_describes_every_file(bundle):
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["schema"] == "mpox-screen-bundle/1"
    assert m["classes"] == ["other", "mpox"] and m["positive_class"] == "mpox"
    assert 0 < m["threshold"] < 1
    assert set(m["operating_point"]) >= {"val_sensitivity", "val_specificity"}
    assert m["input"]["size"] == 128 and m["input"]["colour_order"] == "RGB"
    assert m["outputs"]["cam"]["shape"] == [1, 2, 4, 4]
    assert set(m["files"]) == {
        "model.fp32.onnx",
        "model.int8.onnx",
        "model.fp32.tflite",
        "model.int8.tflite",
    }
    for name, f in m["files"].items():
        assert f["sha256"] == sha256(bundle / name) and f["size"] == (bundle / name).stat().st_size
        assert {"auc", "agreement", "cam_pearson"} <= set(f["metrics"])
        q = f["metrics"]
        assert q["decision_agreement"] >= 0.98 and q["firm_decision_agreement"] >= 0.995
        assert q["other_decision_agreement"] >= 0.98  # the other collections pooled
        assert list(q["decision_agreement_by_collection"]) == ["msid", "idscabies", "skin8"]
        # MSID's held-out split + the others' photos but 1 in 8 (75 and 6), which calibrate
        assert q["n"] == 201 + 448 + 81
    assert m["files"]["model.int8.onnx"]["size"] < m["files"]["model.fp32.onnx"]["size"] / 2
    assert (
        m["export"]["calib_share"] == 8
        and "but the 1 in 8 that calibrate" in m["metrics"]["gate_images"]
    )
    assert {"auc_mean", "auc_sd", "folds", "grouped"} <= set(m["metrics"]["cv"])
    assert m["metrics"]["cv"]["grouped"] is True
    assert m["host"]["git_commit"] and m["created"]
    where = m["metrics"]["collections"]
    assert list(where) == ["msid", "idscabies", "skin8"] and where["msid"]["n"] == 201
    assert where["idscabies"]["positives"] == 0 and 0 <= where["idscabies"]["specificity"] <= 1
    assert "sensitivity" not in where["skin8"] and where["msid"]["sensitivity"] > 0.5
    scabies = where["idscabies"]["conditions"]  # and per condition (source folder) within each
    assert {c: m["n"] for c, m in scabies.items()} == {
        "healthy": 58,
        "impetigo": 31,
        "scabies": 359,
    }
    flagged = sum(m["flagged"] * m["n"] for m in scabies.values()) / 448
    assert flagged == pytest.approx(where["idscabies"]["flagged"])
    assert where["msid"]["conditions"]["mpox"]["sensitivity"] == pytest.approx(
        where["msid"]["sensitivity"]
    )  # the held-out split's only positives
    for name, c in where.items():  # and per skin-tone group, adding up to the collection
        assert sum(t["n"] for t in c["tones"].values()) == c["n"], name
    card = (bundle / "card.md").read_text()
    assert "What to expect on photos from other collections" in card and "| idscabies |" in card
    assert "### What to expect by skin tone" in card and "| skin8 / " in card
    assert "| idscabies / scabies | 359 |" in card and "| msid / measles |" in card
    assert "not a diagnosis" in card and "model.int8.tflite" in card
    assert card.rstrip().endswith("| test row | 0.5 |")  # --card-notes appended
    assert not (bundle / ".export-staging").exists()
    ood = m["ood"]  # the cannot-judge gate of every collection (tests/test_ood.py, test_gate.py)
    assert ood["version"] == 3 and ood["layers"] == [128, 256] and ood["limit"] > 0
    assert ood["lesion_check"] == 1280 and "ImageNet" in ood["method"]  # the lesion check
    assert set(ood["refused"]) == {"msid", "idscabies", "skin8"}
    assert m["outputs"]["features"]["shape"] == [1, 384 + 1280]
    assert (
        ood["sha256"] == sha256(bundle / "ood.npz") and not (bundle / "manifest.json.sig").exists()
    )
    for f in m["files"].values():
        assert f["metrics"]["ood_firm_agreement"] >= 0.95


@pytest.mark.parametrize("name", ["model.fp32.onnx", "model.fp32.tflite"])
def test_fp32_file_matches_torch_and_captum(bundle, torch_model, images, name):
    model, _, spec = torch_model
    b = load_bundle(bundle)
    screener = Screener(b, next(f for f in b.files() if f.name == name))
    gradcam = LayerGradCam(model, model.backbone)
    for img in images:
        x = torch.from_numpy(preprocess(img, spec))[None]
        with torch.no_grad():
            logits = model(x)[0].numpy()
        out = screener.runtime.run(screener.tensor(img))
        out_logits, cam = out.logits, out.cam
        np.testing.assert_allclose(out_logits, logits, atol=1e-4)
        for c in range(2):
            ref = gradcam.attribute(x, target=c)[0, 0].detach().numpy()
            np.testing.assert_allclose(cam[c], ref, atol=1e-5)
        # CAM of a GAP + linear head: summed over the map plus the bias gives the logit
        bias = model.fc.bias.detach().numpy()
        np.testing.assert_allclose(cam.sum((1, 2)) + bias, out_logits, atol=1e-4)


def test_int8_tflite_scales_come_from_the_model(bundle, images):
    rt = open_runtime(bundle / "model.int8.tflite")
    detail = rt.input
    assert detail["dtype"] == np.int8 and detail["quantization"][0] > 0
    assert rt.logits["dtype"] == np.float32, "logits must stay float (no clipping)"
    x = load_bundle(bundle)
    fp32 = Screener(x, x.select("tflite", "fp32"))
    int8 = Screener(x, x.select("tflite", "int8"))
    tensor = fp32.tensor(images[0])
    q = quantize(tensor, detail)
    assert q.dtype == np.int8
    step = detail["quantization"][0]
    assert np.abs(dequantize(q, detail) - tensor).max() <= step / 2 + 1e-6
    p32, p8 = fp32.predict(images[0]), int8.predict(images[0])
    assert abs(p32.positive_prob - p8.positive_prob) < 0.3


def test_int8_tflite_headroom_cuts_the_error_on_held_out_photos(bundle, msid, tmp_path):
    """Calibrated ranges clip unusual photos' activations (normal42 here moved P(mpox) by 0.30
    with whole-photo calibration, 0.32 with kit crops in it too); the bundle's 1.5x headroom must
    beat the plain calibrated ranges on the held-out images."""
    ckpt_path = MODELS / "micrompoxnet-binary" / "checkpoint.pt"
    _, ckpt = load_model(ckpt_path)
    spec = preprocess_spec(ckpt)
    train, held = split_parts(load_dataset(msid, "binary"), ckpt_path.parent / "split.json")
    calib = [preprocess(img, spec) for img in calibration_images(train, 128)]
    plain = tmp_path / "plain.int8.tflite"
    tflite_export.quantize_int8(
        bundle / "model.fp32.tflite", calib, plain, input_range(spec), headroom=1.0
    )
    files = {"fp32": bundle / "model.fp32.tflite", "plain": plain}
    files["headroom"] = bundle / "model.int8.tflite"
    probs = {}
    for name, path in files.items():
        logits = gate.run_file(path, held.images, ckpt["preprocess"], "NHWC").logits
        probs[name] = torch.softmax(torch.from_numpy(logits.reshape(len(held), -1)), 1)[:, 1]
    err = {k: (probs[k] - probs["fp32"]).abs().numpy() for k in ("plain", "headroom")}
    unusual = held.relpaths().index("normal/normal42.png")
    assert err["headroom"][unusual] < 0.9 * err["plain"][unusual], err["plain"][unusual]
    assert err["headroom"].mean() < 0.75 * err["plain"].mean()
    assert err["headroom"].max() < err["plain"].max()


def test_quantize_round_trip_uint8():
    detail = {"dtype": np.uint8, "quantization": (0.5, 128)}
    x = np.array([-64.0, 0.0, 0.4, 63.5, 500.0], np.float32)
    q = quantize(x, detail)
    assert q.tolist() == [0, 128, 129, 255, 255]
    np.testing.assert_allclose(dequantize(q, detail), [-64.0, 0.0, 0.5, 63.5, 63.5])


def test_gate_failure_names_the_file_and_keeps_the_old_bundle(
    bundle, msid, gate_file, tmp_path, monkeypatch
):
    """The first file that fails its gate stops the export: nothing after it is built."""
    out = tmp_path / "b"
    shutil.copytree(bundle, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(onnx_export, "quantize_int8", _never_reached)  # after model.fp32.onnx
    monkeypatch.setattr(tflite_export, "export_fp32", _never_reached)
    limits = gate.Limits(decision_agreement=1.01)
    req = ExportRequest(CKPT, msid, out, limits=limits, collections=[], gate=gate_file)
    with pytest.raises(
        UserError, match=r"gate failed for model\.fp32\.onnx: decision agreement 1\.000"
    ):
        export_bundle(req)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _never_reached(*args, **kwargs):
    pytest.fail("a file was built after an earlier file failed its gate")


def test_saturation_detects_clipped_logits():
    rng = np.random.default_rng(0)
    free = rng.normal(0, 3, (50, 2))
    assert gate.saturated(free) == 0.0
    clipped = np.clip(free, -1.25, 1.25)
    assert gate.saturated(clipped) == pytest.approx(np.mean((np.abs(free) > 1.25).any(1)))


def test_gate_check_lists_every_failure():
    m = {
        "agreement": 0.95,
        "auc_drop": 0.02,
        "cam_pearson": 0.5,
        "rank_corr": 0.99,
        "saturated": 0.1,
    }
    with pytest.raises(UserError) as e:
        gate.check("model.int8.tflite", "int8", m, gate.Limits())
    msg = str(e.value)
    for part in ("model.int8.tflite", "agreement 0.950", "AUC drop 0.0200", "CAM Pearson 0.500"):
        assert part in msg
    assert "clipped" in msg and "\n" not in msg


def test_binary_gate_tolerates_flips_near_the_threshold_only():
    """A decision flip next to the threshold is int8 noise; one far from it fails the gate."""
    n, thr = 400, 0.3
    ref_p = np.linspace(0.01, 0.99, n)
    probs = np.stack([1 - ref_p, ref_p], 1)
    ref = gate.Reference(np.zeros(n, int), probs, np.ones((n, 2, 2)), np.zeros(n))
    cams = np.ones((n, 2, 2, 2))

    def metrics(shift):
        p = np.clip(ref_p + shift, 1e-6, 1 - 1e-6)
        return gate.file_metrics(ref, np.log(np.stack([1 - p, p], 1)), cams, 1, thr)

    near = np.where(np.abs(ref_p - thr) < 0.01, 0.02, 0.0)  # flips just across the threshold
    m = metrics(near)
    assert m["decision_agreement"] < 1 and m["firm_decision_agreement"] == 1.0
    gate.check("model.int8.onnx", "int8", {**m, "cam_pearson": 1.0}, gate.Limits(), binary=True)
    far = np.where((ref_p > 0.6) & (ref_p < 0.64), -0.4, 0.0)  # firm "likely" turned "unlikely"
    m = metrics(far)
    with pytest.raises(UserError, match="away from the threshold"):
        gate.check("model.int8.onnx", "int8", {**m, "cam_pearson": 1.0}, gate.Limits(), binary=True)


def test_cam_export_wraps_any_registry_model():
    from train_host.models import create_model

    model = create_model("mobilenet_v3_small", 3, input_size=96).eval()
    cam_model = wrap(model, 96)
    with torch.no_grad():
        logits, cam = cam_model(torch.randn(1, 3, 96, 96))
    assert logits.shape == (1, 3) and cam.shape == (1, 3, 3, 3)
    assert cam_model.output_names == ("logits", "cam")
    np.testing.assert_allclose((cam.sum((2, 3)) + model.fc.bias).detach(), logits, atol=1e-5)


def test_export_refuses_too_few_calibration_images(tmp_path):
    proc = run_cli(
        "train_host.cli",
        "export",
        "--checkpoint",
        CKPT,
        "--calib-count",
        "20",
        "--out",
        tmp_path,
        ok=False,
    )
    assert proc.returncode == 2
    assert "at least 100" in proc.stderr and "Traceback" not in proc.stderr
    assert not Path(tmp_path / "manifest.json").exists()


def test_export_ships_the_gate_fitted_before_it_and_only_that_checkpoints(tmp_path):
    """Export converts and verifies; the "cannot judge" gate is fitted before it (`mpox-train
    gate --checkpoint`): without one, or with another checkpoint's, it stops in one line before
    reading any photo, naming the step to run."""
    from device.core.ood import OodModel
    from train_host.ood import Gate

    proc = run_cli("train_host.cli", "export", "--checkpoint", CKPT, "--out", tmp_path, ok=False)
    assert f"mpox-train gate --checkpoint {CKPT}" in one_line_error(proc)
    other = Gate(np.zeros(3), np.ones(3), OodModel((3,), (np.eye(3),), np.ones(1), 1.0), "0" * 64)
    other.save(tmp_path / "other.gate.npz")
    args = ("--checkpoint", CKPT, "--gate", tmp_path / "other.gate.npz", "--out", tmp_path)
    proc = run_cli("train_host.cli", "export", *args, ok=False)
    assert "fitted on another checkpoint" in one_line_error(proc)
    (tmp_path / "broken.gate.npz").write_bytes(b"not a gate")
    args = ("--checkpoint", CKPT, "--gate", tmp_path / "broken.gate.npz", "--out", tmp_path)
    assert "not a cannot-judge gate file" in one_line_error(
        run_cli("train_host.cli", "export", *args, ok=False)
    )
    assert not (tmp_path / "manifest.json").exists()


def test_int8_only_bundle_drops_fp32_files(bundle, msid, gate_file, tmp_path):
    from device.updates.signing import keygen, signed_by

    out, keys = tmp_path / "int8", tmp_path / "keys"
    keys.mkdir()
    pub = keygen(tmp_path / "release.key")
    shutil.copy(pub, keys / pub.name)
    shutil.copytree(bundle, out)  # holds fp32 files from the full export
    req = ExportRequest(CKPT, msid, out, ship_fp32=False, collections=[], gate=gate_file)
    m = export_bundle(replace(req, sign=tmp_path / "release.key"))
    assert signed_by(out, keys) == "release.pub"  # `mpox-train export --sign`
    assert set(m["files"]) == {"model.int8.onnx", "model.int8.tflite"}
    assert not (out / "model.fp32.onnx").exists() and not (out / "model.fp32.tflite").exists()
    b = load_bundle(out)
    assert b.select("tflite", "int8").name == "model.int8.tflite"
    with pytest.raises(DeviceError, match="no onnx/fp32 file"):
        b.select("onnx", "fp32")


def test_unreadable_cv_summary_fails_before_the_bundle_changes(bundle, msid, gate_file, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(bundle, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UserError, match=r"cannot read .*nowhere\.json"):
        req = ExportRequest(CKPT, msid, out, cv=tmp_path / "nowhere.json", collections=[])
        export_bundle(replace(req, gate=gate_file))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_card_marks_collections_the_model_trained_on():
    """A clinic reads the card's per-collection table as what to expect; a collection among the
    training photos (--extra-negatives) promises nothing, so the card says so."""
    from train_host.export.manifest import card

    m = json.loads((MODELS / "micrompoxnet-distilled-binary" / "manifest.json").read_text())
    where = m["metrics"]["collections"]
    n = {c: where[c]["n"] for c in ("skin8", "idscabies")}
    plain = card(m)
    assert f"| skin8 | {n['skin8']} |" in plain and "trained on" not in plain
    m["data"]["extra_negatives"] = ["skin8"]
    marked = card(m)
    assert f"| skin8 (trained on) | {n['skin8']} |" in marked
    assert f"| idscabies | {n['idscabies']} |" in marked
    assert "Every photo of skin8 was also trained on as a negative." in marked
    scabies = where["idscabies"]["conditions"]["scabies"]["n"]
    assert f"| idscabies / scabies | {scabies} |" in plain  # per condition: what a clinic sees
    impetigo = where["skin8"]["conditions"]["impetigo"]["n"]
    assert f"| skin8 (trained on) / impetigo | {impetigo} |" in marked


def test_card_says_in_plain_words_what_the_kit_cannot_tell_apart():
    """Of 10 people with each condition, about how many are told 'Mpox likely': most first, one
    line per condition of every collection, trained-on collections marked."""
    from train_host.export.manifest import card

    m = json.loads((MODELS / "micrompoxnet-distilled-binary" / "manifest.json").read_text())
    lines = [line for line in card(m).splitlines() if line.startswith("- of 10 people with")]
    counts = [int(line.split("**")[1]) for line in lines]
    conditions = sum(len(c["conditions"]) for c in m["metrics"]["collections"].values())
    assert len(lines) == conditions and counts == sorted(counts, reverse=True)
    scabies = m["metrics"]["collections"]["idscabies"]["conditions"]["scabies"]
    tens = round(10 * scabies["flagged"])
    line = f"- of 10 people with scabies (idscabies, {scabies['n']} photos), about **{tens}**"
    assert any(x.startswith(line) for x in lines)
    assert any(x.startswith("- of 10 people with healthy skin (msid, 76 photos)") for x in lines)
    m["data"]["extra_negatives"] = ["idscabies"]
    marked = [x for x in card(m).splitlines() if f"(idscabies, {scabies['n']} photos, trained" in x]
    assert len(marked) == 1 and "scabies" in marked[0]


def test_the_host_writes_only_what_the_device_parses(tmp_path):
    """export's last step parses its manifest with the device's type before writing it."""
    from train_host.export.manifest import write

    default = MODELS / (MODELS / "DEFAULT").read_text().strip()
    bad = json.loads((default / "manifest.json").read_text()) | {"threshold": float("nan")}
    bad.pop("card")
    (tmp_path / "model.int8.onnx").write_bytes(b"")
    with pytest.raises(DeviceError, match="threshold"):
        write(tmp_path, bad)
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / "card.md").exists()
