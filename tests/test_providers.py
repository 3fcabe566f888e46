"""ONNX Runtime's execution providers from the config (issue 32, item 2): the choice against
ONNX Runtime's real provider lists, the int8 and fp32 files on the CPU provider this machine
has, and the user's errors in one line."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from device import DeviceError
from device.core.bundle import default_bundle_dir, load_bundle
from device.core.runtimes import Placement, open_runtime
from device.core.runtimes.providers import choose, options
from device.core.screener import Screener
from tests.conftest import one_line_error, run_cli

CPU = "CPUExecutionProvider"
JETSON = ["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU]  # JetPack's ORT build


def test_auto_takes_the_fastest_provider_this_onnx_runtime_has():
    here = ort.get_available_providers()  # PyPI's wheel: the CPU (and Azure, which runs nothing)
    assert choose("auto", here) == [CPU]
    every = ort.get_all_providers()  # every provider ORT knows, in its own order
    assert set(JETSON) <= set(every)
    assert choose("auto", every) == JETSON
    assert choose("auto", [p for p in every if p != "TensorrtExecutionProvider"]) == JETSON[1:]
    assert choose("cuda,cpu", JETSON) == JETSON[1:]


def test_a_provider_this_onnx_runtime_lacks_is_an_error_not_a_silent_cpu():
    with pytest.raises(DeviceError, match=r"cuda is not in this ONNX Runtime \(it has cpu\)"):
        choose("cuda", ort.get_available_providers())
    with pytest.raises(DeviceError, match="auto or a comma list"):
        choose("gpu", JETSON)


def test_tensorrt_keeps_its_engines_in_the_cache_folder(tmp_path):
    opts = options(JETSON, tmp_path / "engines")
    assert opts[0] == {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(tmp_path / "engines"),
    }
    assert opts[1:] == [{}, {}]


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_both_onnx_files_run_on_the_provider_chosen(precision):
    bundle = load_bundle(default_bundle_dir())
    file = bundle.select("onnx", precision)
    rt = open_runtime(file.path, 1, file.data, Placement("auto"))
    assert rt.where == "cpu" and rt.session.get_providers() == [CPU]
    assert Screener(bundle, file, 1, Placement("cpu")).runtime.where == "cpu"
    litert = bundle.select("tflite", precision)
    assert open_runtime(litert.path, 1, litert.data, Placement("auto")).where == "cpu"


def test_classify_names_a_missing_provider_in_one_line(tmp_path):
    proc = run_cli("device.cli", "classify", "--providers", "tensorrt", tmp_path, ok=False)
    assert "tensorrt is not in this ONNX Runtime" in one_line_error(proc)
    conf = tmp_path / "kit.toml"
    conf.write_text('[model]\nproviders = "cuda, gpu"\n')
    proc = run_cli("device.cli", "run", "--config", conf, "--max-frames", "1", ok=False)
    assert "providers" in one_line_error(proc)
    out = run_cli("device.cli", "config", "--print-default").stdout
    assert 'providers = "auto"' in out


def test_the_kit_says_what_runs_the_model(tmp_path, caplog):
    """One line in the journal and the footer of every screen name it (cpu here)."""
    from device.config import from_flags
    from device.live.daemon import Daemon

    kw = dict(source="demo://", display="null", log_dir=str(tmp_path / "logs"))
    with caplog.at_level("INFO", logger="device.live.daemon"):
        daemon = Daemon(from_flags(**kw, state_dir=str(tmp_path / "state"), max_frames=2))
        assert daemon.run() == 0
    assert " on cpu, " in daemon.view.model
    assert "(model.int8.onnx, run on the CPU: providers = auto)" in caplog.text
