"""Config bombs, crashes and wrong messages (issue 30): a TOML nested 100,000 deep, a 5 MB value
echoed in an error, names that are not valid UTF-8 (OpenCV's writers crash on them), a plot name
matplotlib cannot write, a benchmark whose extra is missing, a button with no GPIO library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from device import DeviceError, one_line
from tests.conftest import one_line_error, run_cli
from tests.test_hostile_input import photo  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[1]


def kit(*args, **kw):
    return run_cli("device.cli", *args, ok=False, mem_mb=1500, timeout=120, **kw)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("a = " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('source = "' + "x" * 5_000_000 + '"', "larger than 1024 KiB"),
        ('source = "' + "x" * 500_000 + '"', "500,000 characters (at most 4096)"),
        ('source = "' + "x" * 300 + '"', "File name too long"),
        ('source = "dir://a\\nb\\u0007"', "a\\nb\\x07"),
    ],
)
def test_config_bombs_are_one_short_line(tmp_path, text, needle):
    (tmp_path / "c.toml").write_text(text)
    proc = kit("run", "--config", tmp_path / "c.toml", "--display", "null", "--log-dir", tmp_path)
    errors = [x for x in proc.stderr.splitlines() if not x.startswith("INFO ")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
    assert needle in errors[0] and len(errors[0]) < 600


def test_one_line_keeps_other_scripts():
    assert one_line("Impossible d'écrire: données") == "Impossible d'écrire: données"
    assert one_line("a\nb") == "a\\nb"


def test_names_that_are_not_utf8(tmp_path, photo):  # noqa: F811
    """A folder from a stick named in another encoding: heat-maps and screens are written
    there (OpenCV's imwrite crashed with SIGSEGV on such a path)."""
    odd = os.fsdecode(bytes(tmp_path) + b"/caf\xe9")
    proc = kit("classify", photo[0], "--cam-out", odd, "--no-ood-gate")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert [p.name for p in Path(odd).iterdir()] == ["photo.cam.png"]
    frames = os.fsdecode(bytes(tmp_path) + b"/\xff%03d.png")
    proc = kit(
        "run", "--source", "demo://", "--display", f"file://{frames}", "--max-frames", "2",
        "--log-dir", tmp_path / "logs", "--state-dir", tmp_path / "state",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert os.path.exists(frames % 1)
    video = os.fsdecode(bytes(tmp_path) + b"/\xff.mp4")
    err = one_line_error(kit("run", "--source", "demo://", "--display", f"file://{video}"))
    assert "not valid UTF-8" in err


def test_timing_report_names(tmp_path):
    (tmp_path / "logs").mkdir()
    assert "is a folder" in one_line_error(kit("timing-report", tmp_path / "logs"))
    log = tmp_path / "logs" / "timing.jsonl"
    log.write_text("")
    assert "name the plot .png" in one_line_error(
        kit("timing-report", log, "--png", tmp_path / "x.txt")
    )


BLOCK = """
import builtins, sys
real = builtins.__import__
def block(name, *a, **k):
    if name.split(".")[0] in ("tqdm", "scipy", "torch", "sklearn"):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])
    return real(name, *a, **k)
builtins.__import__ = block
from benchmarks.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_benchmark_without_its_extra_is_one_line():
    """The kit's install has the device extras only: `mpox-bench ood --help` says what is
    missing instead of a traceback."""
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK, "ood", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    err = one_line_error(proc)
    assert "needs the Python package 'tqdm'" in err


def test_a_button_without_a_gpio_library_says_so():
    from device.cases.capture import open_button

    try:
        button = open_button(17, lambda: None)
    except DeviceError as e:
        assert "gpiozero" not in str(e) or "pin library" in str(e), e
    else:  # a machine with GPIO (a Pi): the button opened
        button.close()
