"""The kit's daemon end to end: real bundle, real images or generated frames, real displays."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from device import DeviceError
from device.config import Config, SourceConfig, from_flags
from device.core.bundle import default_bundle_dir, load_bundle
from device.core.images import read_rgb
from device.core.screener import Screener
from device.live.daemon import Daemon
from device.live.notify import Notifier
from device.live.screen import LIKELY, STATUS, UNLIKELY, Renderer
from device.live.sources import open_source
from device.live.timing import STAGES
from tests.conftest import copy_subset


def config(tmp_path: Path, **kw) -> Config:
    base = dict(display="null", log_dir=str(tmp_path / "logs"), summary_interval=0.5)
    return from_flags(**{**base, **kw})


def summaries(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "logs" / "timing.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def photos(msid, tmp_path_factory) -> Path:
    """Six real photos, three mpox and three normal, as a camera replay."""
    dest = tmp_path_factory.mktemp("photos")
    copy_subset(msid, dest, {"mpox": 3, "normal": 3}, offset=10)
    return dest


def test_real_photos_to_annotated_frames(photos, tmp_path):
    """Each frame shows the model's verdict for its photo, the heat-map only inside the square the
    model read, and the timing log has every stage."""
    paths = sorted(photos.rglob("*.png"))
    outs = {}
    for heat in (True, False):
        out = tmp_path / f"heat-{heat}"
        cfg = config(  # the verdict path on every photo (cannot judge: tests/test_ood.py)
            tmp_path,
            source=f"dir://{photos}",
            display=f"file://{out}",
            smoothing=1,
            heatmap=heat,
            ood_gate=False,
        )
        assert Daemon(cfg).run() == 0
        outs[heat] = sorted(out.glob("*.png"))
        assert len(outs[heat]) == len(paths)
    bundle = load_bundle(default_bundle_dir())
    screener = Screener(bundle, bundle.select("onnx", "int8"))
    renderer = Renderer(640, 480)
    verdicts = []
    for path, with_heat, without in zip(paths, outs[True], outs[False], strict=True):
        frame = cv2.imread(str(with_heat))
        expected = LIKELY if screener.predict(read_rgb(path)).positive else UNLIKELY
        assert tuple(frame[20, 3]) == expected, path.name  # the verdict strip's colour
        verdicts.append(expected)
        x, _y, side = renderer.base(cv2.imread(str(path)))[1].square
        body = slice(round(60 * renderer.unit), 480 - round(42 * renderer.unit))
        diff = np.any(frame != cv2.imread(str(without)), axis=2)[body]
        assert diff[:, x : x + side].mean() > 0.01, "no heat-map pixels in the square"
        assert not diff[:, : x - 2].any() and not diff[:, x + side + 2 :].any()
    assert set(verdicts) == {LIKELY, UNLIKELY}, "expected both verdicts on 3 mpox + 3 normal"
    last = summaries(tmp_path)[-1]
    assert last["state"] == "stopped" and last["malformed"] == 0
    assert all(last["stages_ms"][s] is not None for s in (*STAGES, "frame"))


def test_malformed_frames_are_dropped_and_counted(photos, tmp_path):
    replay = tmp_path / "replay"
    copy_subset(photos, replay, {"mpox": 2})
    (replay / "mpox" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert Daemon(config(tmp_path, source=f"dir://{replay}", display=f"file://{out}")).run() == 0
    assert len(list(out.glob("*.png"))) == 2
    assert summaries(tmp_path)[-1]["malformed"] == 1


def test_video_file_through_opencv(tmp_path):
    """A recording goes through the same OpenCV capture as a V4L2 camera; none is skipped."""
    clip = tmp_path / "clip.avi"
    source = open_source("demo://", SourceConfig(width=320, height=240, fps=240))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for _ in range(12):
        writer.write(source.read().image)
    writer.release()
    out = tmp_path / "out.avi"
    assert Daemon(config(tmp_path, source=f"file://{clip}", display=f"file://{out}")).run() == 0
    video = cv2.VideoCapture(str(out))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert summaries(tmp_path)[-1]["dropped"] == 0


def test_generated_frames_max_frames(tmp_path):
    cfg = config(tmp_path, source="demo://", max_frames=15, fps=240)
    assert Daemon(cfg).run() == 0
    assert sum(row["frames"] for row in summaries(tmp_path)) == 15


def test_lost_camera_is_retried_and_recovers(tmp_path, monkeypatch):
    """Absent twice, then 5 frames, then unplugged, then back: the loop waits, says so, goes on."""
    import tests.fakes.sources as fakes

    monkeypatch.setattr(fakes.Flaky, "opens", 0)
    statuses: list[str] = []
    shown: list[np.ndarray] = []
    notifier = Notifier()
    monkeypatch.setattr(notifier, "status", statuses.append)
    daemon = Daemon(config(tmp_path, source="flaky://", max_frames=12, retry_max=0.2), notifier)
    real_show = daemon.display.show
    monkeypatch.setattr(daemon.display, "show", lambda c: shown.append(c) or real_show(c))
    assert daemon.run() == 0
    assert fakes.Flaky.opens == 4  # absent, absent, lost after 5 frames, recovered
    assert daemon.frames == 12
    states = [s.split(",")[0] for s in statuses]  # "screening, 9.8 fps" is still screening
    changes = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    assert changes[:4] == [
        "waiting for camera",
        "screening",
        "waiting for camera",
        "screening",
    ]
    assert len(shown) >= 12 + 3  # every frame and every retry screen was shown
    assert daemon.view.status == ""  # "no camera - retrying" is gone once the camera is back


def test_picamera2_fake_real_call_order(tmp_path, monkeypatch):
    """csi://0 with a fake picamera2 that has the real method names: configured with a lores stream
    for the model, started, captured, and stopped and closed on the way out."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fakes"))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    import picamera2

    picamera2.CALLS.clear()
    assert Daemon(config(tmp_path, source="csi://0", max_frames=3)).run() == 0
    names = [c[0] for c in picamera2.CALLS]
    assert names[:6] == [
        "global_camera_info",
        "__init__",
        "create_video_configuration",
        "align_configuration",
        "configure",
        "start",
    ]
    assert names[-2:] == ["stop", "close"]
    assert names.count("capture_arrays") >= 3
    lores = picamera2.CALLS[2][2]["lores"]
    assert lores["format"] == "YUV420" and min(lores["size"]) == 128  # the model's input size


def _fake_picamera2(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fakes"))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    import picamera2

    picamera2.CALLS.clear()
    return picamera2


def test_close_up_focus_and_a_case_taken_in_focus(tmp_path, monkeypatch):
    """Camera Module 3 (the fake has its control names): continuous autofocus in the macro
    range from the start; space focuses once, holds exposure and white balance, saves the next
    frame, frees them again; the timing summary carries the lens position and exposure."""
    from device.cases.store import CaseStore

    picamera2 = _fake_picamera2(monkeypatch)
    cfg = config(tmp_path, source="csi://0", max_frames=6, state_dir=str(tmp_path / "s"))
    daemon = Daemon(cfg)
    shown = []
    real = daemon.display.show
    monkeypatch.setattr(
        daemon.display,
        "show",
        lambda c: shown.append(c) or real(c) or (" " if len(shown) == 2 else None),
    )
    assert daemon.run() == 0
    calls = [
        (n, a[0] if a else None)
        for n, a, _ in picamera2.CALLS
        if n in ("set_controls", "autofocus_cycle")
    ]
    assert calls == [
        ("set_controls", {"AfMode": 2, "AfRange": 1}),
        ("set_controls", {"AfMode": 1}),
        ("autofocus_cycle", None),
        ("set_controls", {"AfMode": 2}),
        ("set_controls", {"AeEnable": False, "AwbEnable": False}),
        ("set_controls", {"AeEnable": True, "AwbEnable": True}),
    ]
    with CaseStore(tmp_path / "s", create=False) as store:
        assert store.count() == 1
    camera = summaries(tmp_path)[-1]["camera"]
    assert camera == {"LensPosition": 7.5, "ExposureTime": 16000, "AnalogueGain": 2.0}


def test_fixed_focus_module_and_manual_focus(tmp_path, monkeypatch):
    picamera2 = _fake_picamera2(monkeypatch)
    manual = config(tmp_path, source="csi://0", max_frames=2, af_mode="manual", lens_position=20)
    assert Daemon(manual).run() == 0
    first = next(c for c in picamera2.CALLS if c[0] == "set_controls")
    assert first[1][0] == {"AfMode": 0, "AfRange": 1, "LensPosition": 15.0}  # the lens's limit
    picamera2.CALLS.clear()
    fixed = {k: v for k, v in picamera2.CONTROLS.items() if not k.startswith(("Af", "Lens"))}
    monkeypatch.setattr(picamera2, "CONTROLS", fixed)  # a v2 or HQ module: no autofocus
    assert Daemon(config(tmp_path, source="csi://0", max_frames=2)).run() == 0
    assert not [c for c in picamera2.CALLS if c[0] in ("set_controls", "autofocus_cycle")]
    assert "LensPosition" not in summaries(tmp_path)[-1]["camera"]


def test_picamera2_closed_when_start_fails(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fakes"))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    import picamera2

    from device.live.sources import SourceUnavailable

    picamera2.CALLS.clear()
    monkeypatch.setattr(picamera2, "FAIL", {"start", "lores"})
    with pytest.raises(SourceUnavailable, match="cannot start"):
        open_source("csi://0", SourceConfig(small_size=128))
    names = [c[0] for c in picamera2.CALLS]
    assert names.count("create_video_configuration") == 2  # lores refused: main only
    assert names[-2:] == ["stop", "close"]  # a camera that failed to start is still released


def test_missing_picamera2_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(DeviceError, match="apt install python3-picamera2"):
        open_source("csi://0", SourceConfig())


def test_trace_frames_and_timing_report(tmp_path, capsys):
    from device.cli import main

    cfg = config(
        tmp_path, source="demo://", max_frames=20, fps=240, trace_frames=True, ood_gate=False
    )
    assert Daemon(cfg).run() == 0
    frames = [json.loads(x) for x in (tmp_path / "logs" / "frames.jsonl").read_text().splitlines()]
    assert len(frames) == 20 and all(set(STAGES) <= set(f) for f in frames)
    capsys.readouterr()
    assert main(["timing-report", str(tmp_path / "logs" / "timing.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "20 frames" in out and all(f"\n{s} " in out for s in STAGES)
    capture = next(line for line in out.splitlines() if line.startswith("capture "))
    assert capture.endswith("wait"), "the camera wait is no share of the frame's own time"
    png = tmp_path / "logs" / "timing.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_timing_log_rotates_and_report_reads_every_part(tmp_path, capsys):
    from device.live.timing import Timing
    from device.live.timing_report import read_rows

    timing = Timing(tmp_path, interval=0.0, max_bytes=10_000, backups=2)
    for i in range(100):
        timing.frame({s: 1.0 + i for s in STAGES}, 6.0 + i)
        timing.summary(dropped=0, state="screening")
    timing.close()
    parts = sorted(p.name for p in tmp_path.glob("timing.jsonl*"))
    assert parts == ["timing.jsonl", "timing.jsonl.1", "timing.jsonl.2"]
    rows = read_rows(tmp_path / "timing.jsonl")
    assert 10 < len(rows) < 100  # the oldest went with the rotation: bounded on an SD card
    assert [r["stages_ms"]["frame"]["max"] for r in rows] == sorted(
        r["stages_ms"]["frame"]["max"] for r in rows
    )  # oldest part first


def test_timing_report_errors_are_one_line(tmp_path):
    from device.live.timing_report import read_rows

    with pytest.raises(DeviceError, match="no such file"):
        read_rows(tmp_path / "none.jsonl")
    (tmp_path / "t.jsonl").write_text("garbage\n")
    with pytest.raises(DeviceError, match="no timing summaries"):
        read_rows(tmp_path / "t.jsonl")


def test_daemon_on_a_framebuffer_file(tmp_path):
    """The kit's default display end to end: generated frames into a 480x320 RGB565 'device'."""
    fb = tmp_path / "fb0"
    fb.write_bytes(b"")
    cfg = config(
        tmp_path,
        source="demo://",
        display=f"fb://{fb}",
        screen_width=480,
        screen_height=320,
        fb_bpp=16,
        max_frames=5,
        fps=240,
    )
    assert Daemon(cfg).run() == 0
    pixels = np.frombuffer(fb.read_bytes(), "<u2").reshape(320, 480)
    strip = pixels[20, 3]  # the verdict strip, as RGB565: drawn skin is "Cannot judge"
    b, g, r = ((strip & 31) << 3, (strip >> 5 & 63) << 2, (strip >> 11) << 3)
    assert (int(b), int(g), int(r)) == (STATUS[0] & 0xF8, STATUS[1] & 0xFC, STATUS[2] & 0xF8)


def test_board_readings_from_sysfs(tmp_path):
    from device.live import board

    zone = tmp_path / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("61234\n")
    assert board.cpu_temperature(tmp_path / "thermal") == 61.2
    assert board.cpu_temperature(tmp_path / "none") is None
    flags = tmp_path / "get_throttled"
    flags.write_text("0x50005\n")  # under-voltage now, throttled now, both have occurred
    got = board.throttled(flags)
    assert got["under_voltage"] and got["throttled"] and got["under_voltage_occurred"]
    assert not got["freq_capped"] and got["throttled_occurred"]
    assert board.throttled(tmp_path / "absent") is None
    rss, peak = board.memory_mb()
    assert 0 < rss <= peak


def test_serial_and_pipelined_loops_show_the_same_verdicts(photos, tmp_path):
    """The pipelined loop (the default) draws frame N while the model runs on N+1; each frame
    still gets its own verdict, and no frame of a finite source is lost at its end."""
    strips = {}
    for pipelined in (True, False):
        out = tmp_path / f"p-{pipelined}"
        cfg = config(
            tmp_path, source=f"dir://{photos}", display=f"file://{out}", smoothing=1,
            ood_gate=False, pipeline=pipelined,
        )  # fmt: skip
        assert Daemon(cfg).run() == 0
        strips[pipelined] = [tuple(cv2.imread(str(p))[20, 3]) for p in sorted(out.glob("*.png"))]
    assert strips[True] == strips[False] and len(strips[True]) == 6


def test_a_failing_model_stops_the_pipelined_loop_with_its_error(tmp_path, monkeypatch):
    daemon = Daemon(config(tmp_path, source="demo://", max_frames=5))

    def broken(x):
        raise DeviceError("model file unreadable")

    monkeypatch.setattr(daemon.screener.runtime, "run", broken)
    with pytest.raises(DeviceError, match="model file unreadable"):
        daemon.run()
    assert not daemon.worker.thread.is_alive()
