"""The daemon's TOML config: defaults round-trip, flags override, every bad value is one line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from device import DeviceError
from device.config import Config, default_toml, load, log_dir, read_toml

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_printed_default_is_the_default(tmp_path):
    text = default_toml()
    assert "# inference threads [1..64]" in text
    assert load(write(tmp_path, text), {}) == Config()
    assert set(read_toml(write(tmp_path, text))) == set(asdict(Config()))


def test_file_then_flags(tmp_path):
    path = write(tmp_path, 'source = "v4l2:///dev/video2"\nthreads = 3\nheat_alpha = 1\n')
    cfg = load(path, {"threads": "4", "heatmap": False})
    assert (cfg.source, cfg.threads, cfg.heat_alpha, cfg.heatmap) == (
        "v4l2:///dev/video2",
        4,
        1.0,
        False,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("treads = 2\n", "unknown config key 'treads'"),
        ('threads = "two"\n', "config key 'threads': 'two' is not a whole number"),
        ("threads = 0\n", "config key 'threads': 0 is below 1"),
        ("heat_alpha = 1.5\n", "config key 'heat_alpha': 1.5 is above 1"),
        ('backend = "tensorrt"\n', "config key 'backend': 'tensorrt' is not one of"),
        ("heatmap = 1\n", "config key 'heatmap': expected bool, got int"),
        ("threads = 2\nthreads = 3\n", "is not valid TOML"),
        ("fb_bpp = 24\n", "config key 'fb_bpp': 24 is not one of [0, 16, 32]"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    with pytest.raises(DeviceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(write(tmp_path, text), {})


def test_missing_file(tmp_path):
    with pytest.raises(DeviceError, match="cannot read config"):
        load(tmp_path / "nope.toml", {})


def test_log_dir_from_systemd(monkeypatch):
    monkeypatch.setenv("LOGS_DIRECTORY", "/var/log/mpox-screen")
    assert log_dir(Config()) == Path("/var/log/mpox-screen")
    assert log_dir(Config(log_dir="/tmp/x")) == Path("/tmp/x")
    monkeypatch.delenv("LOGS_DIRECTORY")
    assert log_dir(Config()) == Path("logs")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "device.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--threads", "x"], "argument --threads: 'x' is not a whole number"),
        (["run", "--backend", "x"], "argument --backend: 'x' is not one of ['onnx', 'tflite']"),
        (["run", "--source", "ftp://cam", "--display", "null"], "unknown source 'ftp://cam'"),
        (["run", "--display", "hdmi"], "unknown display 'hdmi'"),
        (["run", "--source", "/no/such/folder/*.png", "--display", "null"], "no images found"),
        (["run", "--bundle", "/no/such/bundle", "--display", "null"], "/no/such/bundle"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, args, message):
    proc = run_cli(*args, "--log-dir", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mpox-screen") and "error:" in last and message in last
    if message.startswith("argument"):  # a flag's error names the flag, not a config key
        assert "config key" not in last
    assert "Traceback" not in proc.stderr


def test_unwritable_log_dir_is_one_line():
    proc = run_cli("run", "--display", "null", "--log-dir", "/proc/no-logs")
    assert proc.returncode == 2
    assert "mpox-screen: error: cannot write the lock file to /proc/no-logs" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_config_file_error_and_print_default(tmp_path):
    proc = run_cli("run", "--config", str(write(tmp_path, "colour = 1\n")))
    assert proc.returncode == 2 and "unknown config key 'colour'" in proc.stderr
    assert "Traceback" not in proc.stderr
    printed = run_cli("config", "--print-default")
    assert printed.returncode == 0
    assert load(write(tmp_path, printed.stdout), {}) == Config()


def test_classify_screens_with_the_kits_gate_settings(tmp_path, msid):
    """classify reads the config the screen runs with: its quality limits, its gates and its
    language (a flag still overrides), so a photo gets the same answer on both."""
    import json

    photo = sorted((msid / "normal").iterdir())[0]

    def status(*flags: str) -> dict:
        cmd = [sys.executable, "-m", "device.cli", "classify", "--json", *flags, str(photo)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)

    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert status("--config", str(empty))["status"] in ("ok", "cannot_judge")
    strict = write(tmp_path, 'quality_min_mean = 250.0\nlanguage = "fr"\n')
    row = status("--config", str(strict))
    assert row["status"] == "poor_quality" and row["problem"] == "dark"
    assert status("--config", str(strict), "--no-quality-gate")["status"] != "poor_quality"
    off = tmp_path / "off.toml"
    off.write_text("quality_min_mean = 250.0\nquality_gate = false\n")
    assert status("--config", str(off))["status"] != "poor_quality"
    assert status("--config", str(off), "--quality-gate")["status"] == "poor_quality"
    text = subprocess.run(
        [sys.executable, "-m", "device.cli", "classify", "--config", str(strict), str(photo)],
        capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
    assert "Plus de lumière" in text, text


def test_run_help_lists_every_key_once_by_its_consumer_with_its_default():
    from dataclasses import fields

    from device.config import SECTIONS

    keys = [k for names in SECTIONS.values() for k in names]
    assert sorted(keys) == sorted(f.name for f in fields(Config))  # every key, once
    text = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--help"], capture_output=True, text=True
    ).stdout
    titles = [text.index(f"\n{name}:\n") for name in SECTIONS]
    assert titles == sorted(titles)  # in the sections' order
    camera = text[text.index("\ncamera:\n") : text.index("\nscreen:\n")]
    assert "--stall-timeout" in camera and "(default: 640)" in camera and "--font" not in camera
