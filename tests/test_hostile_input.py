"""Hostile images, flags, configs and faults: one line and a defined outcome, never a traceback,
a hang or unbounded memory (issue 19)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from device import DeviceError
from device.config import SourceConfig, from_flags, load
from device.core.images import UnreadableImage, find_images, read_rgb
from device.live.daemon import Daemon
from device.live.notify import Notifier
from device.live.sources import SourceUnavailable, open_source
from device.live.timing import Timing
from tests.conftest import MODELS, run_cli

BUNDLE = MODELS / "micrompoxnet-binary"


def classify(*args, ok=False):
    return run_cli("device.cli", "classify", "--bundle", BUNDLE, *args, ok=ok, timeout=120)


def one_line_error(proc, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG that claims w x h pixels (a decompression bomb's header, 60 bytes on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def photo(tmp_path) -> tuple[Path, np.ndarray]:
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 96, dtype=np.uint8)
    rgb[..., 1] = 90
    rgb[16:48, 30:60, 2] = 200
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), rgb[..., ::-1])
    return path, rgb


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint16])
def test_deep_tiff_reads_like_its_8_bit_copy(tmp_path, photo, dtype):
    _, rgb = photo
    bgr = rgb[..., ::-1].astype(np.float64)
    if np.issubdtype(dtype, np.floating):
        deep = (bgr / 255.0).astype(dtype)
    elif dtype == np.uint16:
        deep = (bgr * 257).astype(dtype)
    else:
        deep = bgr.astype(dtype)
    path = tmp_path / f"deep-{np.dtype(dtype).name}.tiff"
    assert cv2.imwrite(str(path), deep)
    got = read_rgb(path)
    assert got.dtype == np.uint8 and got.shape == rgb.shape
    assert np.abs(got.astype(int) - rgb).max() <= 1


def test_float_rgba_is_composited_like_8_bit(tmp_path, photo):
    _, rgb = photo
    alpha = np.linspace(0, 1, 96, dtype=np.float32)[None, :, None].repeat(64, 0)
    bgra = np.concatenate([rgb[..., ::-1] / 255.0, alpha], axis=2).astype(np.float32)
    cv2.imwrite(str(tmp_path / "f.tiff"), bgra)
    cv2.imwrite(str(tmp_path / "u.png"), np.uint8(np.round(bgra * 255)))
    diff = read_rgb(tmp_path / "f.tiff").astype(int) - read_rgb(tmp_path / "u.png")
    assert np.abs(diff).max() <= 2


def test_bomb_fifo_long_name_and_tiny_do_not_stop_the_batch(tmp_path, photo):
    good, _ = photo
    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(good, folder / "a-good.png")
    png_header_only(folder / "b-bomb.png", 20000, 20000)
    os.mkfifo(folder / "c-fifo.png")
    cv2.imwrite(str(folder / "d-tiny.png"), np.full((1, 1, 3), 128, np.uint8))
    long_name = tmp_path / ("x" * 300 + ".png")
    t0 = time.monotonic()
    proc = classify(folder, long_name, "--json")
    assert time.monotonic() - t0 < 60  # the FIFO did not block
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    rows = {Path(r["path"]).name[:12]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert "P(mpox)" not in proc.stdout and rows["a-good.png"]["label"] in ("mpox", "other")
    assert "more than the limit" in rows["b-bomb.png"]["error"]
    assert rows["c-fifo.png"]["error"] == "not a regular file"
    assert "tiny image" in rows["d-tiny.png"]["warning"]
    assert "too long" in rows["x" * 12]["error"].lower()


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    with pytest.raises(UnreadableImage, match="20000x20000 pixels is more than the limit"):
        read_rgb(png_header_only(tmp_path / "bomb.png", 20000, 20000))
    img = np.zeros((100, 100, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "ok.png"), img)
    with pytest.raises(UnreadableImage, match="limit of 9,999"):
        read_rgb(tmp_path / "ok.png", max_pixels=9_999)


def test_a_bad_name_in_the_walk_is_reported_not_raised(tmp_path):
    found = list(find_images([tmp_path / ("y" * 300)]))
    assert len(found) == 1 and found[0].problem


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--threads", "100000"], "100000 is above 64"),
        (["--threads", "abc"], "'abc' is not a whole number"),
        (["--max-pixels", "0"], "0 is below 1"),
    ],
)
def test_classify_flag_bounds(photo, args, needle):
    proc = classify(photo[0], *args)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_cam_out_on_a_file_or_unwritable_place(photo, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("x")
    one_line_error(classify(photo[0], "--cam-out", taken), "exists and is not a folder")
    one_line_error(classify(photo[0], "--cam-out", "/proc/cams"), "cannot create it")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--retry-max", "nan"], "is not a finite number"),
        (["--heat-alpha", "inf"], "is not a finite number"),
        (["--display", "file:///tmp/x/%d_%d.png"], "exactly one number field"),
        (["--display", "file:///tmp/x/100%.png"], "exactly one number field"),
    ],
)
def test_run_flags_that_would_hurt(args, needle, tmp_path):
    proc = run_cli(
        "device.cli", "run", "--log-dir", tmp_path, "--source", "demo://", *args, ok=False
    )
    one_line_error(proc, needle)


def test_binary_toml_is_one_line(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(b"\xff\xfe\x00threads = 2\x80\x81")
    one_line_error(run_cli("device.cli", "run", "--config", cfg, ok=False), "not UTF-8")


def test_timing_report_with_odd_neighbours_and_bytes(tmp_path):
    log = tmp_path / "timing.jsonl"
    cfg = from_flags(display="null", source="demo://", log_dir=str(tmp_path), max_frames=3)
    assert Daemon(cfg).run() == 0
    row = json.loads(log.read_text().splitlines()[-1])
    log.write_bytes(json.dumps(row).encode() + b"\n\xff\xfe garbage\n")
    (tmp_path / "timing.jsonl.png").write_bytes(b"png")
    (tmp_path / "timing.jsonl.1").write_text('{"stages_ms": {}}\n')  # hand-edited, keys missing
    (tmp_path / "timing.jsonl.bak").write_text("old")
    ok = run_cli("device.cli", "timing-report", log, ok=False)
    assert ok.returncode == 0, ok.stderr
    one_line_error(
        run_cli("device.cli", "timing-report", log, "--png", tmp_path / "no" / "t.png", ok=False),
        "does not exist",
    )


def test_full_log_disk_is_said_once_and_close_is_clean(tmp_path, caplog):
    (tmp_path / "timing.jsonl").symlink_to("/dev/full")
    timing = Timing(tmp_path, 1.0)
    for _ in range(5):
        timing.summary(0, "screening")
    timing.close()
    lost = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(lost) == 1 and "No space left" in lost[0].getMessage()


def test_second_daemon_is_refused_in_one_line(tmp_path):
    cfg = from_flags(display="null", source="demo://", log_dir=str(tmp_path), max_frames=2)
    first = Daemon(cfg)
    with pytest.raises(DeviceError, match=r"another mpox-screen is already running .*pid \d+"):
        Daemon(cfg)
    assert first.run() == 0  # releases the lock
    assert Daemon(cfg).run() == 0


def test_sigterm_while_the_model_loads_is_a_clean_exit(tmp_path, monkeypatch, caplog):
    import logging

    from device import cli

    caplog.set_level(logging.INFO)

    def slow_build(self, cfg):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    monkeypatch.setattr(Daemon, "_build", slow_build)
    assert cli.main(["run", "--display", "null", "--log-dir", str(tmp_path)]) == 0
    assert "stopped while starting" in caplog.text
    assert (tmp_path / "mpox-screen.lock").is_file()


def test_folder_source_refuses_bombs_and_notices_a_deleted_folder(tmp_path, photo):
    folder = tmp_path / "frames"
    folder.mkdir()
    png_header_only(folder / "a-bomb.png", 20000, 20000)
    shutil.copy(photo[0], folder / "b.png")
    source = open_source(f"dir://{folder}", SourceConfig(loop=True))
    frames = [source.read() for _ in range(3)]
    assert frames[0].image.size == 0  # the bomb: dropped once, then left out
    assert all(f.image.shape == (64, 96, 3) for f in frames[1:])
    shutil.rmtree(folder)
    with pytest.raises(SourceUnavailable, match="is gone"):
        source.read()
    only_bomb = tmp_path / "bombs"
    only_bomb.mkdir()
    png_header_only(only_bomb / "a.png", 20000, 20000)
    source = open_source(f"dir://{only_bomb}", SourceConfig(loop=True))
    with pytest.raises(DeviceError, match="none of its images can be read"):
        source.read()


def test_only_bad_frames_keep_the_watchdog_fed(tmp_path, monkeypatch):
    """A source of nothing but malformed frames is a stall: the screen says so and the
    watchdog is pinged on each retry instead of starving for 15 s."""
    import tests.fakes.sources  # noqa: F401  (registers the fakes)
    from device.live.sources import Frame, register

    class Blank:
        live, description = True, "blank frames"

        def __init__(self, *_):
            pass

        def read(self):
            time.sleep(0.01)
            return Frame(np.empty((0, 0, 3), np.uint8))

        def close(self):
            pass

    register("blank")(Blank)
    pings: list[float] = []
    statuses: list[str] = []
    notifier = Notifier()
    monkeypatch.setattr(notifier, "watchdog", lambda: pings.append(time.monotonic()))
    monkeypatch.setattr(notifier, "status", statuses.append)
    cfg = from_flags(display="null", source="blank://", log_dir=str(tmp_path), stall_timeout=0.3)
    daemon = Daemon(cfg, notifier)
    threading.Timer(2.0, daemon.request_stop).start()
    assert daemon.run() == 0
    assert len(pings) >= 3 and "waiting for camera" in statuses
    assert max(np.diff(pings)) < 1.0


def test_quality_limits_come_from_the_config_keys(tmp_path):
    """The quality gate takes `[gates.quality]` whole; the flat keys of older files still set it."""
    sectioned = tmp_path / "s.toml"
    sectioned.write_text("[gates.quality]\nmin_focus = 9.5\nmax_glare = 0.1\n")
    flat = tmp_path / "f.toml"
    flat.write_text("quality_min_focus = 9.5\nquality_max_glare = 0.1\n")
    for cfg in (
        load(sectioned, {}),
        load(flat, {}),
        from_flags(quality_min_focus=9.5, quality_max_glare=0.1),
    ):
        limits = cfg.gates.quality
        assert (limits.min_focus, limits.max_glare, limits.min_mean) == (9.5, 0.1, 40.0)


def test_daemon_shows_guidance_on_a_blurred_stream(tmp_path, photo):
    folder = tmp_path / "blurred"
    folder.mkdir()
    img = cv2.imread(str(photo[0]))
    cv2.imwrite(str(folder / "b.png"), cv2.GaussianBlur(img, (0, 0), 6))
    shown: list[np.ndarray] = []
    keys = dict(display="null", source=f"dir://{folder}", loop=True, max_frames=5, width=96,
                height=64)  # fmt: skip
    daemon = Daemon(from_flags(**keys, log_dir=str(tmp_path / "l")))
    real = daemon.display.show
    daemon.display.show = lambda c: shown.append(c) or real(c)
    assert daemon.run() == 0
    assert daemon.view.guidance == "Hold steady" and daemon.view.verdict == ""
    assert daemon.frames == 5 and len(shown) >= 5
    off = Daemon(
        from_flags(**keys, quality_gate=False, ood_gate=False, log_dir=str(tmp_path / "m"))
    )
    assert off.run() == 0 and off.view.verdict.startswith("Mpox")


def test_train_cli_without_the_train_extra_is_one_line():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; from train_host.cli import main; "
        "sys.exit(main(['models']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "install the train extra" in proc.stderr


def test_peak_rss_is_never_below_rss():
    from device.live import board

    rss, peak = board.memory_mb()
    assert 0 < rss <= peak


def test_an_unlistable_folder_is_reported_and_the_walk_goes_on(tmp_path, photo, monkeypatch):
    """A folder the kit may not list (root ignores chmod 000, so the kernel's refusal is
    simulated at os.scandir): reported as a problem, the other photos still found."""
    root = tmp_path / "walk"
    (root / "a").mkdir(parents=True)
    (root / "locked").mkdir()
    shutil.copy(photo[0], root / "a" / "p.png")
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = list(find_images([root]))
    assert [f.path.name for f in found if not f.problem] == ["p.png"]
    (bad,) = [f for f in found if f.problem]
    assert bad.path.name == "locked" and bad.problem == "Permission denied"
