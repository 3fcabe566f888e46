"""The daemon's TOML config: defaults round-trip, flags override, every bad value is one line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from device import DeviceError
from device.config import Config, KitConfig, from_flags, load, log_dir, read_toml, to_toml
from device.config.keys import keys
from device.config.sections import TITLES
from device.core.quality import QualityLimits
from device.live.displays import WindowOptions
from device.live.displays.framebuffer import FbOptions
from device.live.sources.picam import CsiOptions

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_printed_default_is_the_default(tmp_path):
    text = to_toml()
    assert "# inference threads [1..64]\nthreads = 2" in text
    assert "[source.csi]" in text and "[display.fb]" in text and "[gates.quality]" in text
    assert load(write(tmp_path, text), {}) == Config()
    assert set(read_toml(write(tmp_path, text))) == {f.name for f in fields(Config)}


def test_file_then_flags(tmp_path):
    path = write(tmp_path, '[source]\nuri = "v4l2:///dev/video2"\n[model]\nthreads = 3\n'
                 "[display]\nheat_alpha = 1\n[display.fb]\nbpp = 16\n")  # fmt: skip
    cfg = load(path, {"threads": "4", "heatmap": False, "af_mode": "manual"})
    assert (cfg.source.uri, cfg.model.threads, cfg.display.heat_alpha, cfg.display.heatmap) == (
        "v4l2:///dev/video2",
        4,
        1.0,
        False,
    )
    assert cfg.display.plugin("fb", FbOptions).bpp == 16
    assert cfg.source.plugin("csi", CsiOptions).af_mode == "manual"


def test_an_installed_flat_file_reads_into_its_sections(tmp_path, caplog):
    """Kits installed before sections have every key at the top: each lands in its section
    (plug-in keys in their plug-in's table), with one notice and a way to rewrite the file."""
    flat = write(tmp_path, 'source = "demo://"\nthreads = 3\nfb_bpp = 16\nfullscreen = true\n'
                 'quality_min_focus = 9.5\nlanguage = "fr"\naf_range = "full"\n')  # fmt: skip
    with caplog.at_level("INFO"):
        cfg = load(flat, {}, notify=True)
    assert "flat layout" in caplog.text and "config --sections" in caplog.text
    assert (cfg.source.uri, cfg.model.threads, cfg.kit.language) == ("demo://", 3, "fr")
    assert cfg.gates.quality.min_focus == 9.5
    assert cfg.display.plugin("fb", FbOptions).bpp == 16
    assert cfg.display.plugin("window", WindowOptions).fullscreen
    assert cfg.display.plugin("sdl", WindowOptions).fullscreen  # one key, both desktop displays
    assert cfg.source.plugin("csi", CsiOptions).af_range == "full"
    printed = run_cli("config", "--sections", str(flat))
    assert printed.returncode == 0, printed.stderr
    assert load(write(tmp_path, printed.stdout), {}) == cfg
    assert "[kit]" in printed.stdout and 'language = "fr"' in printed.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("treads = 2\n", "unknown config key 'treads'"),
        ('threads = "two"\n', "config key 'threads': 'two' is not a whole number"),
        ("threads = 0\n", "config key 'threads': 0 is below 1"),
        ("[model]\nthreads = 0\n", "config key 'model.threads': 0 is below 1"),
        ("[display]\nheat_alpha = 1.5\n", "config key 'display.heat_alpha': 1.5 is above 1"),
        ('[model]\nbackend = "tensorrt"\n', "config key 'model.backend': 'tensorrt' is not one of"),
        ("[display]\nheatmap = 1\n", "config key 'display.heatmap': expected bool, got int"),
        ("threads = 2\nthreads = 3\n", "is not valid TOML"),
        ("[display.fb]\nbpp = 24\n", "config key 'display.fb.bpp': 24 is not one of [0, 16, 32]"),
        ("fb_bpp = 24\n", "config key 'fb_bpp': 24 is not one of [0, 16, 32]"),
        ("[model]\ntreads = 2\n", "unknown config key 'model.treads' (keys of [model]: bundle"),
        ("[camera]\nwidth = 2\n", "unknown config section [camera] (sections: model, source"),
        ("[source.gst]\nx = 1\n", "unknown config table [source.gst] (tables: [source.csi])"),
        ("[source.csi]\naf_mode = 1\n", "config key 'source.csi.af_mode': expected str"),
        ('[model]\nproviders = "gpu"\n', "config key 'model.providers'"),
        ("threads = 2\n[model]\nthreads = 3\n", "'threads' is set twice"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    with pytest.raises(
        DeviceError,
        match=message.replace("[", r"\[")
        .replace("]", r"\]")
        .replace("(", r"\(")
        .replace(")", r"\)"),
    ):
        load(write(tmp_path, text), {})


def test_every_key_has_one_flag_and_a_home():
    """Each field with help of every section, sub-table and plug-in table is one key with one
    flag; a flag sets only the same option (fullscreen: window and sdl)."""
    table = keys()
    assert len({k.flag for k in table}) == len(table)
    homes = [p for k in table for p in k.paths]
    assert len(set(homes)) == len(homes)
    assert {k.flag: k.name for k in table if k.flag != k.paths[0][-1]} == {
        "source": "source.uri",
        "source_fps": "source.pace_fps",
        "display": "display.uri",
        "screen_width": "display.width",
        "screen_height": "display.height",
        "fb_bpp": "display.fb.bpp",
        **{f"quality_{n}": f"gates.quality.{n}" for n in QualityLimits.__dataclass_fields__},
    }


def test_a_section_checks_itself_when_built_in_code():
    with pytest.raises(DeviceError, match=r"config key 'kit\.log_backups': 101 is above 100"):
        KitConfig(log_backups=101)
    with pytest.raises(DeviceError, match=r"config key 'source\.csi\.lens_position'"):
        CsiOptions(lens_position=-1.0)


def test_missing_file(tmp_path):
    with pytest.raises(DeviceError, match="cannot read config"):
        load(tmp_path / "nope.toml", {})


def test_log_dir_from_systemd(monkeypatch):
    monkeypatch.setenv("LOGS_DIRECTORY", "/var/log/mpox-screen")
    assert log_dir(KitConfig()) == Path("/var/log/mpox-screen")
    assert log_dir(from_flags(log_dir="/tmp/x").kit) == Path("/tmp/x")
    monkeypatch.delenv("LOGS_DIRECTORY")
    assert log_dir(KitConfig()) == Path("logs")


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
    strict = write(tmp_path, '[kit]\nlanguage = "fr"\n[gates.quality]\nmin_mean = 250.0\n')
    row = status("--config", str(strict))
    assert row["status"] == "poor_quality" and row["problem"] == "dark"
    assert status("--config", str(strict), "--no-quality-gate")["status"] != "poor_quality"
    off = tmp_path / "off.toml"
    off.write_text("[gates]\nquality_gate = false\n[gates.quality]\nmin_mean = 250.0\n")
    assert status("--config", str(off))["status"] != "poor_quality"
    assert status("--config", str(off), "--quality-gate")["status"] == "poor_quality"
    text = subprocess.run(
        [sys.executable, "-m", "device.cli", "classify", "--config", str(strict), str(photo)],
        capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
    assert "Plus de lumière" in text, text


def test_run_help_lists_every_key_once_by_its_consumer_with_its_default():
    text = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--help"], capture_output=True, text=True
    ).stdout
    for k in keys():
        assert text.count(f"--{k.flag.replace('_', '-')} ") + text.count(
            f"--{k.flag.replace('_', '-')}," ) >= 1, k.flag  # fmt: skip
    titles = [text.index(f"\n{name}:\n") for name in TITLES.values()]
    assert titles == sorted(titles)  # in the sections' order
    camera = text[text.index("\ncamera:\n") : text.index("\nscreen:\n")]
    assert "--stall-timeout" in camera and "(default: 640)" in camera and "--font" not in camera
    assert "\ncamera: options of csi://:\n  --af-mode" in camera


def test_the_three_command_lines_dispatch_one_way():
    """mpox-screen, mpox-train and mpox-bench: one table of lazily imported command modules,
    user errors one line."""
    for module, bad in (
        ("device.cli", "classify"),
        ("train_host.cli", "fit"),
        ("benchmarks.cli", "ood"),
    ):
        proc = subprocess.run([sys.executable, "-m", module, bad, "--no-such-flag"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_python_3_10_fallback_reads_the_same_file(tmp_path):
    """JetPack 6 has Python 3.10, without tomllib: the loader then takes tomli, and reads the
    same sections (run here with sys.version_info made 3.10 before the import)."""
    path = write(tmp_path, '[model]\nthreads = 3\n[source.csi]\naf_mode = "manual"\n')
    code = (
        "import sys; sys.version_info = (3, 10, 12, 'final', 0); sys.modules['tomllib'] = None\n"
        "from device.config import load\nm = sys.modules['device.config.load']\n"
        f"cfg = load(__import__('pathlib').Path({str(path)!r}), {{}})\n"
        "print(m.tomllib.__name__, cfg.model.threads)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["tomli", "3"], out.stderr[-2000:]
