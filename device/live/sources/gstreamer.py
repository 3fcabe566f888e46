"""`gst://PIPELINE`: any GStreamer pipeline (an RTSP camera, a clip, a board's own camera element),
and on a Jetson `csi://N`: its CSI camera through the Argus ISP (`nvarguscamerasrc`: exposure,
white balance and denoise on the chip; scaling and conversion on the VIC, `nvvidconv`).

Through GStreamer's Python bindings (PyGObject, from the OS packages), not OpenCV's GStreamer
backend, which pip's OpenCV does not have. A pipeline without its own appsink gets the kit's
(`! videoconvert ! video/x-raw,format=BGR ! appsink`); one that ends in an appsink must give BGR,
BGRx or BGRA. A second appsink named `small` is read as the model's small stream. A live pipeline
keeps only the newest frame; a recording is read frame by frame (none skipped) and replayed with
`loop`. A pipeline error (a camera unplugged, the Argus daemon gone) or the end of a live stream
is `SourceUnavailable`, which the daemon retries; a pipeline that does not parse is the user's
to fix.
"""

from __future__ import annotations

import time

import numpy as np

from device import DeviceError
from device.config import SourceConfig
from device.live.sources import Frame, SourceUnavailable, register

SINK, SMALL = "mpox", "small"  # the appsinks the kit reads
APPSINK = "appsink name={name} max-buffers=1 drop=true sync=false"
FIRST_FRAME_S = 10.0  # Argus takes a few seconds to start its ISP
PULL_NS = 200_000_000  # a read checks the bus at least this often
CHANNELS = {"BGR": 3, "BGRX": 4, "BGRA": 4}
INSTALL_HINT = (
    "apt install python3-gi gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-base, and a venv "
    "made with --system-site-packages"
)


def import_gst():
    """Gst and GstVideo, initialised; a one-line error where the bindings are missing."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        gi.require_version("GstVideo", "1.0")
        from gi.repository import GLib, Gst, GstApp, GstVideo  # noqa: F401 (GstApp: pull)
    except (ImportError, ValueError) as e:
        raise DeviceError(
            f"GStreamer's Python bindings are not available ({e}): {INSTALL_HINT}"
        ) from None
    Gst.init(None)
    return Gst, GstVideo, GLib


def with_appsink(pipeline: str) -> str:
    """The user's pipeline, ending in the kit's BGR appsink unless it has its own."""
    if "appsink" in pipeline:
        return pipeline
    return f"{pipeline} ! videoconvert ! video/x-raw,format=BGR ! " + APPSINK.format(name=SINK)


def argus_pipeline(sensor: int, cfg: SourceConfig) -> str:
    """A Jetson CSI camera at the kit's size and rate in NVMM memory, converted to BGRx by the
    VIC; with the model's small stream, a tee and a second VIC scale (no CPU resize)."""
    from device.live.sources.picam import lores_size

    fps = max(1, round(cfg.fps))
    head = (
        f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={cfg.width},"
        f"height={cfg.height},framerate={fps}/1,format=NV12"
    )
    main = "nvvidconv ! video/x-raw,format=BGRx ! " + APPSINK.format(name=SINK)
    if not cfg.small_size:
        return f"{head} ! {main}"
    w, h = lores_size(cfg.width, cfg.height, cfg.small_size)
    small = f"nvvidconv ! video/x-raw,format=BGRx,width={w},height={h} ! "
    return f"{head} ! tee name=t t. ! queue ! {main} t. ! queue ! {small}" + APPSINK.format(
        name=SMALL
    )


class GstSource:
    def __init__(self, pipeline: str, cfg: SourceConfig, description: str):
        self.Gst, self.GstVideo, GLib = import_gst()
        self.description, self.closed = description, False
        try:
            self.pipe = self.Gst.parse_launch(pipeline)
        except GLib.Error as e:
            raise DeviceError(f"{description}: the pipeline does not parse: {e.message}") from None
        self.sink = self.pipe.get_by_name(SINK) or self._first_appsink()
        self.small = self.pipe.get_by_name(SMALL)
        self.bus = self.pipe.get_bus()
        self.live = self._start()
        for sink in filter(None, (self.sink, self.small)):
            sink.set_property("drop", self.live)  # a recording: every frame, none dropped
        self.loop = cfg.loop and not self.live
        self.period = 1.0 / cfg.pace_fps if cfg.pace_fps and not self.live else 0.0
        self.next_time = 0.0
        try:
            self.pending = self._pull(FIRST_FRAME_S)  # a camera that cannot give one: absent
            if self.pending is None and self.live:
                raise SourceUnavailable(f"{description}: no frame within {FIRST_FRAME_S:.0f} s")
        except DeviceError:
            self.close()
            raise

    def _first_appsink(self):
        sinks, found = self.pipe.iterate_sinks(), []
        while (step := sinks.next())[0] == self.Gst.IteratorResult.OK:
            if step[1].get_factory().get_name() == "appsink":
                found.append(step[1])
        if not found:
            raise DeviceError(f"{self.description}: the pipeline has no appsink")
        return found[0]

    def _start(self) -> bool:
        """PAUSED then PLAYING; True for a live pipeline (it cannot preroll: NO_PREROLL)."""
        Gst = self.Gst
        paused = self.pipe.set_state(Gst.State.PAUSED)
        if paused == Gst.StateChangeReturn.FAILURE or (
            self.pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE
        ):
            reason = self._error() or "the pipeline does not start"
            self.close()
            raise SourceUnavailable(f"{self.description}: {reason}")
        return paused == Gst.StateChangeReturn.NO_PREROLL

    def read(self) -> Frame | None:
        frame, self.pending = self.pending, None
        if frame is None:
            frame = self._pull(None)
        if frame is None and self.loop and not self.closed:
            self.pipe.seek_simple(
                self.Gst.Format.TIME, self.Gst.SeekFlags.FLUSH | self.Gst.SeekFlags.KEY_UNIT, 0
            )
            frame = self._pull(None)
        if frame is None and self.live and not self.closed:
            raise SourceUnavailable(f"{self.description}: the stream ended")
        if frame is not None and self.period:
            time.sleep(max(0.0, self.next_time - time.monotonic()))
            self.next_time = time.monotonic() + self.period
        return frame

    def _pull(self, within: float | None) -> Frame | None:
        """The next frame; None at the end of the stream (or after `within` seconds)."""
        deadline = None if within is None else time.monotonic() + within
        while not self.closed and (deadline is None or time.monotonic() < deadline):
            reason = self._error()  # every read: a live sink may still hold a frame
            if reason:
                raise SourceUnavailable(f"{self.description}: {reason}")
            sample = self.sink.try_pull_sample(PULL_NS)
            if sample is not None:
                small = self.small.try_pull_sample(PULL_NS) if self.small else None
                return Frame(self._image(sample), self._image(small) if small else None)
            if self.sink.is_eos():
                return None
        return None

    def _error(self) -> str | None:
        msg = self.bus.pop_filtered(self.Gst.MessageType.ERROR)
        if msg is None:
            return None
        err, _ = msg.parse_error()
        return f"{err.message} ({msg.src.get_name()})"

    def _image(self, sample) -> np.ndarray:
        info = self.GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        fmt = info.finfo.name.upper()
        if fmt not in CHANNELS:
            raise DeviceError(
                f"{self.description}: the appsink gives {fmt}; end the pipeline in "
                "video/x-raw,format=BGR (or leave the appsink to the kit)"
            )
        w, h, stride, ch = info.width, info.height, info.stride[0], CHANNELS[fmt]
        buf = sample.get_buffer()
        ok, mapped = buf.map(self.Gst.MapFlags.READ)
        if not ok:
            raise SourceUnavailable(f"{self.description}: a frame could not be read")
        try:
            rows = np.frombuffer(mapped.data, np.uint8, count=h * stride).reshape(h, stride)
            return np.ascontiguousarray(rows[:, : w * ch].reshape(h, w, ch)[:, :, :3])
        finally:
            buf.unmap(mapped)

    def close(self) -> None:
        self.closed = True
        self.pipe.set_state(self.Gst.State.NULL)


def open_gst(pipeline: str, cfg: SourceConfig) -> GstSource:
    if not pipeline.strip():
        raise DeviceError("source gst://: give a pipeline, e.g. gst://videotestsrc is-live=true")
    return GstSource(with_appsink(pipeline), cfg, f"GStreamer {pipeline}")


def open_argus(num: str, cfg: SourceConfig) -> GstSource:
    if not (num or "0").isdigit():
        raise DeviceError(f"source csi://{num}: the camera is a number (csi://0, csi://1)")
    sensor = int(num or 0)
    return GstSource(argus_pipeline(sensor, cfg), cfg, f"CSI camera {sensor} (Argus)")


register("gst")(open_gst)
