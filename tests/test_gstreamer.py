"""GStreamer sources through the real bindings and real pipelines: `gst://` on videotestsrc and on
a recorded clip (filesrc ! decodebin), the camera going away (a pipeline error, a live stream
ending) and the daemon retrying it, and `csi://` on a Jetson built as an Argus pipeline."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from device import DeviceError
from device.config import SourceConfig, from_flags
from device.live.sources import SourceUnavailable, open_source
from tests.conftest import require, run_cli

LIVE = "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1"


@pytest.fixture(scope="module")
def gst():
    require(importlib.util.find_spec("gi") is not None, "PyGObject (gi) not installed")
    from device.live.sources.gstreamer import import_gst

    try:
        return import_gst()[0]
    except DeviceError as e:
        require(False, str(e))


def frames(source, most: int = 100) -> list[np.ndarray]:
    out = []
    while len(out) < most and (frame := source.read()) is not None:
        out.append(frame.image)
    return out


@pytest.fixture(scope="module")
def clip(gst, tmp_path_factory) -> Path:
    """12 frames recorded by GStreamer itself (Theora in Ogg: the base plugins have both)."""
    path = tmp_path_factory.mktemp("clip") / "clip.ogg"
    record = gst.parse_launch(
        "videotestsrc num-buffers=12 pattern=ball ! video/x-raw,width=96,height=64,framerate=30/1"
        f" ! theoraenc ! oggmux ! filesink location={path}"
    )
    record.set_state(gst.State.PLAYING)
    msg = record.get_bus().timed_pop_filtered(30 * gst.SECOND, gst.MessageType.EOS)
    record.set_state(gst.State.NULL)
    assert msg is not None and path.stat().st_size > 0
    return path


def test_a_live_pipeline_gives_bgr_frames_newest_first(gst):
    red = "videotestsrc is-live=true pattern=solid-color foreground-color=0xffff0000"
    source = open_source(f"gst://{red} ! video/x-raw,width=64,height=48", SourceConfig())
    try:
        assert source.live and "GStreamer" in source.description
        (image,) = frames(source, 1)
        assert image.shape == (48, 64, 3) and image.flags.c_contiguous
        assert tuple(image[24, 32]) == (0, 0, 255)  # red, in OpenCV's BGR order
    finally:
        source.close()


def test_a_recorded_clip_is_read_whole_then_ends_or_loops(clip):
    pipeline = f"gst://filesrc location={clip} ! decodebin"
    once = open_source(pipeline, SourceConfig())
    assert not once.live
    assert len(frames(once)) == 12 and once.read() is None  # every frame, then the end
    once.close()
    looped = open_source(pipeline, SourceConfig(loop=True))
    assert len(frames(looped, 30)) == 30  # replayed from the start
    looped.close()


def test_a_pipeline_with_its_own_appsinks_and_a_small_stream(gst):
    text = (
        "videotestsrc num-buffers=3 ! video/x-raw,width=200,height=100 ! tee name=t "
        "t. ! queue ! videoconvert ! video/x-raw,format=BGRx ! appsink name=mpox "
        "t. ! queue ! videoscale ! videoconvert ! video/x-raw,format=BGR,width=64,height=32 ! "
        "appsink name=small"
    )
    source = open_source(f"gst://{text}", SourceConfig())
    frame = source.read()
    assert frame.image.shape == (100, 200, 3) and frame.small.shape == (32, 64, 3)
    source.close()


def test_the_camera_going_away_is_retried_not_fatal(gst):
    ends = open_source(
        f"gst://{LIVE.replace('is-live=true', 'is-live=true num-buffers=4')}", SourceConfig()
    )
    assert len(frames(ends, 4)) == 4
    with pytest.raises(SourceUnavailable, match="the stream ended"):
        ends.read()  # a live stream that ends is a camera gone, not the end of a recording
    ends.close()
    source = open_source(f"gst://{LIVE}", SourceConfig())
    frames(source, 2)
    element = source.pipe.get_by_name("camera") or next(
        e for e in _elements(gst, source.pipe) if e.get_factory().get_name() == "videotestsrc"
    )
    from gi.repository import GLib

    error = GLib.Error.new_literal(gst.ResourceError.quark(), "Device unplugged", 3)
    element.post_message(gst.Message.new_error(element, error, "test"))  # as a driver would
    with pytest.raises(SourceUnavailable, match="Device unplugged"):
        frames(source, 50)
    source.close()


def _elements(gst, pipe):
    it = pipe.iterate_elements()
    while (step := it.next())[0] == gst.IteratorResult.OK:
        yield step[1]


def test_the_daemon_screens_a_gst_source_and_reopens_it(gst, tmp_path):
    """A live stream that ends every 8 frames: the kit waits, reopens it and keeps screening."""
    from device.live.daemon import Daemon

    flaky = LIVE.replace("is-live=true", "is-live=true num-buffers=8")
    cfg = from_flags(source=f"gst://{flaky}", display="null", log_dir=str(tmp_path / "l"),
                     max_frames=20, retry_max=0.2, state_dir=str(tmp_path / "s"))  # fmt: skip
    daemon = Daemon(cfg)
    opened = []
    daemon.camera.opened = lambda: opened.append(1) or Daemon._opened(daemon)
    assert daemon.run() == 0 and daemon.frames == 20
    assert len(opened) >= 3  # the first open and at least two reopenings
    assert daemon.view.verdict or daemon.view.guidance


def test_gst_from_the_command_line_and_its_one_line_errors(gst, tmp_path):
    run_cli("device.cli", "run", "--source", f"gst://{LIVE}", "--display", "null",
            "--max-frames", "3", "--log-dir", tmp_path)  # fmt: skip
    for pipeline, message in [
        ("videotestsrc ! nosuchelement", 'no element "nosuchelement"'),
        ("", "give a pipeline"),
        ("videotestsrc ! video/x-raw,format=I420 ! appsink", "the appsink gives I420"),
    ]:
        proc = run_cli("device.cli", "run", "--source", f"gst://{pipeline}", "--display", "null",
                       "--log-dir", tmp_path, ok=False)  # fmt: skip
        last = proc.stderr.strip().splitlines()[-1]  # after the daemon's start lines
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert last.startswith("mpox-screen: error: ") and message in last


def test_csi_on_a_jetson_is_the_argus_pipeline(gst, monkeypatch):
    """What a board run needs, checked by construction: the sensor, the kit's size and rate in
    NVMM memory, the VIC's conversion, and the small stream scaled by the VIC too."""
    from device.live.sources import csi
    from device.live.sources.gstreamer import argus_pipeline

    cfg = SourceConfig(width=1280, height=720, fps=30.0)
    assert argus_pipeline(1, cfg) == (
        "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1280,height=720,"
        "framerate=30/1,format=NV12 ! nvvidconv ! video/x-raw,format=BGRx ! "
        "appsink name=mpox max-buffers=1 drop=true sync=false"
    )
    small = argus_pipeline(0, replace(cfg, small_size=128))
    assert "tee name=t" in small and "width=228,height=128 ! appsink name=small" in small
    gst.parse_launch(
        small.replace("nvarguscamerasrc sensor-id=0", "videotestsrc")
        .replace("(memory:NVMM)", "")
        .replace("nvvidconv", "videoconvert ! videoscale")
    )  # links
    monkeypatch.setattr(csi, "on_jetson", lambda: True)
    with pytest.raises(DeviceError, match='no element "nvarguscamerasrc"'):
        open_source("csi://0", cfg)  # not a Jetson's GStreamer: said in one line
    with pytest.raises(DeviceError, match="the camera is a number"):
        open_source("csi://front", cfg)
    monkeypatch.setattr(csi, "on_jetson", lambda: False)
    monkeypatch.setitem(sys.modules, "picamera2", None)  # no Pi here (nor another test's fake)
    with pytest.raises(DeviceError, match="picamera2 is not available"):
        open_source("csi://0", cfg)  # a Pi's path
