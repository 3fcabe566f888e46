"""Hostile bundles: every bad value is refused with one line, nothing outside the bundle is read,
and what was hashed is what runs (issue 19)."""

import json
import shutil

import numpy as np
import pytest

from device import DeviceError
from device.core.bundle import load_bundle
from device.core.screener import Screener
from tests.conftest import MODELS, edit_manifest, run_cli

SRC = MODELS / "micrompoxnet-binary"


@pytest.fixture
def root(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    for f in ("manifest.json", "model.int8.onnx", "model.int8.tflite", "card.md"):
        shutil.copy(SRC / f, out / f)
    m = json.loads((out / "manifest.json").read_text())
    m["files"] = {
        k: v for k, v in m["files"].items() if k in ("model.int8.onnx", "model.int8.tflite")
    }
    (out / "manifest.json").write_text(json.dumps(m))
    return out


def _rename_file(m, new):
    m["files"][new] = m["files"].pop("model.int8.onnx")


BAD = [
    (lambda m: m.update(threshold=float("nan")), "threshold"),
    (lambda m: m.update(threshold=float("inf")), "threshold"),
    (lambda m: m.update(threshold=1e308), "threshold"),
    (lambda m: m.update(threshold=-5), "threshold"),
    (lambda m: m.update(threshold=True), "threshold"),
    (lambda m: m.update(classes=["other", "other"], positive_class="other"), "duplicate"),
    (lambda m: m.update(classes=["mpox"], positive_class="mpox"), "at least two"),
    (lambda m: m["input"].update(std=[0.2, 0, 0.2]), "std must be positive"),
    (lambda m: m["input"].update(mean="0.5"), "mean must be three finite numbers"),
    (lambda m: m["input"].update(crop="zoom"), "'crop' is 'zoom'"),
    (lambda m: m["input"].update(colour_order="CMYK"), "'colour_order'"),
    (lambda m: m["input"].update(size=10**9), "size"),
    (lambda m: m.update(task="regression"), "'task'"),
    (lambda m: m["outputs"]["logits"].update(shape=[1, 3]), "does not match 2 classes"),
    (lambda m: _rename_file(m, "../model.int8.onnx"), "plain file name"),
    (lambda m: _rename_file(m, "/etc/passwd"), "plain file name"),
    (lambda m: m["files"]["model.int8.onnx"].update(format="exe"), "'format'"),
    (lambda m: m["files"]["model.int8.onnx"].update(sha256="../x"), "sha256"),
    (lambda m: m.update(model="x"), "not a JSON object"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_bad_manifest_values_are_refused_in_one_line(root, change, message):
    edit_manifest(root, change)
    with pytest.raises(DeviceError, match=message.replace("(", r"\(")):
        load_bundle(root)


@pytest.mark.parametrize("text", ["[" * 100000, '{"schema": ' * 5000, "x" * (2 << 20)])
def test_deep_or_huge_manifest_is_one_line(root, text):
    (root / "manifest.json").write_text(text)
    proc = run_cli("device.cli", "classify", "--bundle", root, SRC / "card.md", ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_symlink_out_of_the_bundle_is_refused(root, tmp_path):
    outside = tmp_path / "outside.onnx"
    shutil.move(root / "model.int8.onnx", outside)
    (root / "model.int8.onnx").symlink_to(outside)
    with pytest.raises(DeviceError, match="points outside the bundle"):
        load_bundle(root)


def test_the_verified_bytes_are_what_runs(root):
    """A model file swapped on disk after the sha256 check is never loaded."""
    bundle = load_bundle(root)
    (root / "model.int8.onnx").write_bytes(b"not a model any more")
    screener = Screener(bundle, bundle.select("onnx", "int8"), threads=1)
    pred = screener.predict(np.full((200, 200, 3), 128, np.uint8))
    assert 0 <= pred.positive_prob <= 1


def test_a_bare_bundle_name_gets_a_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DeviceError, match=r"did you mean .*models/micrompoxnet-4class"):
        load_bundle("micrompoxnet-4class")


def test_installer_validator_prints_sums_or_one_line(root):
    ok = run_cli("device.core.manifest_check", root)
    assert len(ok.stdout.split()) == 6 and "model.int8.onnx" in ok.stdout and "card.md" in ok.stdout
    edit_manifest(root, lambda m: _rename_file(m, "../../etc/passwd"))
    bad = run_cli("device.core.manifest_check", root, ok=False)
    assert bad.returncode == 2 and "plain file name" in bad.stderr and not bad.stdout
