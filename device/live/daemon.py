"""`mpox-screen run`: camera -> model -> verdict and heat-map on the kit's screen, all day.

The daemon wires the frame's stages: capture (`camera.py`: opening, retries, stalls, bad frames),
the quality gate and the model (`pipeline.py`, the model on its own thread), the decision
(`verdict.py`), drawing and showing (`presenter.py`), and the record (`case_capture.py`,
`timing.py`). It owns the lifecycle: it tells systemd it is alive only when an iteration really
completed (a frame shown or a camera retry made), and stops cleanly on SIGTERM/SIGINT, 'q',
`max_frames` or the end of a recording.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from device.cases.capture import CaseRecorder
from device.config import Config, log_dir, state_dir
from device.core.bundle import Bundle, default_bundle_dir, load_bundle
from device.core.runtimes import Placement
from device.core.runtimes.providers import ENGINES
from device.core.screener import Screener
from device.i18n import _
from device.i18n import use as use_language
from device.live.camera import Camera
from device.live.displays import Display, open_display
from device.live.instance_lock import InstanceLock, lock_dir
from device.live.notify import Notifier
from device.live.pipeline import InferenceWorker, Inferred, gate, infer
from device.live.presenter import Presenter
from device.live.screen import Renderer, View
from device.live.sources import Frame, scheme_of
from device.live.timing import WAIT, Timing, lap
from device.updates.signing import signed_by

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, cfg: Config, notifier: Notifier | None = None):
        self.cfg = cfg
        self.notifier = notifier or Notifier.from_env()
        self.stop_event = threading.Event()
        self.lock = InstanceLock(lock_dir(log_dir(cfg.kit)))
        try:
            self._build(cfg)
        except BaseException:
            self.lock.release()
            raise

    def _build(self, cfg: Config) -> None:
        model, shown, gates = cfg.model, cfg.display, cfg.gates
        use_language(cfg.kit.language)
        self.bundle: Bundle = load_bundle(model.bundle or default_bundle_dir())
        place = Placement(model.providers, state_dir(cfg.cases) / ENGINES)
        file = self.bundle.select(model.backend, model.precision)
        self.screener = Screener(self.bundle, file, model.threads, place)
        where = self.screener.runtime.where
        self.screener.runtime.run(self.screener.tensor(np.zeros((64, 64, 3), np.uint8)))  # warm
        self.display: Display = open_display(replace(shown, fps=cfg.source.fps))
        w, h = self.display.size or (
            shown.width or cfg.source.width,
            shown.height or cfg.source.height,
        )
        renderer = Renderer(w, h, shown.heat_floor, shown.heat_alpha, shown.font)
        self.decider = self.screener.decider(gates.smoothing, gates.ood_gate)
        kit = cfg.kit
        self.timing = Timing(
            log_dir(kit), kit.summary_interval, kit.log_max_bytes, kit.log_backups, kit.trace_frames
        )
        signer = signed_by(self.bundle.root, Path(cfg.kit.keys_dir))  # a bad signature: refused
        signed = _("signed") if signer else _("unsigned")
        view = View(
            threshold=self.bundle.threshold,
            positive_class=self.bundle.manifest.positive_class,
            model=f"{self.bundle.name} {self.bundle.manifest.version} on {where}, {signed}",
        )
        self.screen = Presenter(self.display, renderer, view, shown.heatmap, self.notifier)
        self.frames, self.state = 0, "starting"
        size = int(self.bundle.input["size"])
        self.camera = Camera(cfg.source, size, self.stop_event, self._wait_for_camera, self._opened)
        self.gate_limits = gates.quality if gates.quality_gate else None
        self.worker = InferenceWorker(self.screener) if model.pipeline else None
        self.last_shown: float | None = None
        self.cases = CaseRecorder(cfg.cases, self.bundle, self.screener.file)
        self.screen.notice(self.cases.problem, 10.0)  # a store that cannot save: said for 10 s

    @property
    def view(self) -> View:
        return self.screen.view

    @property
    def renderer(self) -> Renderer:
        return self.screen.renderer

    # ---- lifecycle -------------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        self.stop_event.set()

    def run(self) -> int:
        previous = {s: signal.signal(s, self.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        log.info(
            "screening with %s (%s, run on the %s: providers = %s) on %s",
            self.bundle.name,
            self.screener.file.name,
            self.screener.runtime.where.upper(),
            self.cfg.model.providers,
            self.display.description,
        )
        try:
            self._loop()
        finally:
            self.notifier.stopping()
            if self.worker is not None:
                self.worker.close()
            self.camera.close()
            self.display.close()
            self.cases.close()
            self._summary("stopped")
            self.timing.close()
            self.notifier.close()
            self.lock.release()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _loop(self) -> None:
        """capture -> gate+infer -> decide -> render -> record, until stopped."""
        while not self.stop_event.is_set():
            frame = self.camera.next()
            if frame is not None:
                self._frame(frame)
                if self.cfg.kit.max_frames and self.frames >= self.cfg.kit.max_frames:
                    return
            if self.timing.due():
                row = self._summary(self.state)
                self.notifier.status(f"{self.state}, {row['fps']:.1f} fps")
        if self.worker is not None and (done := self.worker.collect()) is not None:
            self._present(done)  # the source ended: its last frame is still shown

    def _summary(self, state: str) -> dict:
        self.timing.malformed = self.camera.malformed
        return self.timing.summary(self.camera.dropped, state)

    def _opened(self) -> None:
        """A camera (re)opened: old frames must not vote on the new view."""
        self.decider.reset()
        demo = scheme_of(self.cfg.source.uri)[0] == "demo"
        self.view.status = _("DEMO: generated frames, not a patient") if demo else ""
        self._set_state("screening")

    def _wait_for_camera(self, reason: str, delay: float) -> None:
        """Say so on screen and to systemd, ping the watchdog (a retry is an iteration), wait."""
        self._set_state("waiting for camera")
        log.warning("%s; retrying in %.1f s", reason, delay)
        text = (
            _("no camera - retrying in {seconds} s").format(seconds=f"{delay:.0f}")
            if delay >= 1
            else _("no camera - retrying")
        )
        self._key(self.screen.waiting(text))
        self.stop_event.wait(delay)

    # ---- one frame -------------------------------------------------------------------------
    def _frame(self, frame: Frame) -> None:
        if frame.camera:
            self.timing.camera = frame.camera
        if self.screen.frozen is not None:
            self._key(self.screen.show(self.screen.frozen))
            return
        gated = gate(frame, self.gate_limits)  # pipelined: while the worker still runs frame N
        if self.worker is None:  # serial: the model's work, then drawing, on this thread
            self._present(infer(self.screener, gated))
            return
        done = self.worker.collect()  # frame N, while the worker takes frame N+1
        self.worker.submit(gated)
        if done is not None:
            self._present(done)

    def _present(self, done: Inferred) -> None:
        """Decide, draw, record if asked, show; time it."""
        t = {"capture": self.camera.capture_ms, **done.t}
        if done.problem:
            verdict = self.decider.poor_quality(done.problem, done.quality)
        else:
            verdict = self.decider.judge(done.reading, done.quality)
        canvas = self.screen.draw(done.frame.image, verdict, t, self.timing.fps())
        clock = time.perf_counter()
        if self.cases.ready(self.camera.source):  # a case saves what the screen shows
            self.screen.notice(self.cases.save(done.frame.image, canvas, verdict), 3.0)
        self._key(self.screen.show(canvas))
        self._finish(t, clock)

    def _finish(self, t: dict[str, float], clock: float) -> None:
        """A frame was shown: time the display stage and count the frame."""
        lap(t, "display", clock)
        self.frames += 1
        now = time.perf_counter()
        if self.worker is not None and self.last_shown is not None:
            frame_ms = (now - self.last_shown) * 1000.0  # stages overlap: the real period
        else:
            frame_ms = sum(ms for stage, ms in t.items() if stage != WAIT)
        self.last_shown = now
        self.timing.frame(t, frame_ms)

    def _key(self, key: str | None) -> None:
        """The keys the screen passes on: quit, save a case."""
        if key == "q":
            self.stop_event.set()
        elif key == " ":
            self.cases.request()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.notifier.status(state)
