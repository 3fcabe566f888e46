"""The render stage: a frame and its `Verdict` drawn as the kit's screen and shown, and the keys
pressed there. All screen state lives here (the `View`, the heat-map toggle, a frozen frame, a
notice on screen for a few seconds); the daemon hands it frames and verdicts and gets back the
keys that concern the rest of the kit ('q', space).

Showing a frame is what tells systemd the kit is alive (the watchdog), and the first one that it
is ready: a ping means a frame was really on the screen.
"""

from __future__ import annotations

import time

import numpy as np

from device.core.verdict import Status, Verdict
from device.i18n import _
from device.live.displays import Display
from device.live.notify import Notifier
from device.live.screen import Renderer, View
from device.live.timing import lap


class Presenter:
    def __init__(
        self, display: Display, renderer: Renderer, view: View, heatmap: bool, notifier: Notifier
    ):
        self.display, self.renderer, self.view, self.notifier = display, renderer, view, notifier
        self.heatmap, self.frozen, self.ready = heatmap, None, False
        self.note, self.note_until = "", 0.0

    def notice(self, text: str, seconds: float) -> None:
        """A line over the screen for a while (a saved case, a store that cannot save)."""
        self.note, self.note_until = text, time.monotonic() + seconds

    def draw(self, image: np.ndarray, verdict: Verdict, t: dict[str, float], fps: float):
        """The frame with its verdict (or guidance instead), timed into `t` ("cam", "render")."""
        clock = time.perf_counter()
        canvas, geom = self.renderer.base(image)
        base_ms = (time.perf_counter() - clock) * 1000.0
        clock = time.perf_counter()
        if verdict.status is Status.OK:
            if self.heatmap:
                self.renderer.heat(canvas, geom, verdict.cam)
            clock = lap(t, "cam", clock)
        self._words(verdict, t, fps)
        self.renderer.text(canvas, self.view, geom)
        lap(t, "render", clock)
        t["render"] += base_ms
        return canvas

    def waiting(self, text: str) -> str | None:
        """No camera: the status screen instead of a frame."""
        self.view.status, self.view.verdict = text, ""
        return self.show(self.renderer.status_screen(self.view))

    def show(self, canvas: np.ndarray) -> str | None:
        """On screen (with the notice, if one is up); the key pressed, unless the screen itself
        handles it ('h' heat-map, 'f' freeze)."""
        if self.note and time.monotonic() < self.note_until:
            self.renderer.notice(canvas, self.note)
        key = self.display.show(canvas)
        self.notifier.watchdog()
        if not self.ready:
            self.notifier.ready()
            self.ready = True
        if key == "h":
            self.heatmap = not self.heatmap
        elif key == "f":
            self._freeze(canvas)
        else:
            return key
        return None

    def _freeze(self, canvas: np.ndarray) -> None:
        if self.frozen is None:
            self.frozen = canvas.copy()
            self.renderer.notice(self.frozen, _("FROZEN - f to resume"))
        else:
            self.frozen = None

    def _words(self, verdict: Verdict, t: dict[str, float], fps: float) -> None:
        """The screen's words from the verdict: guidance instead of a verdict when the kit has
        none for this frame."""
        v = self.view
        v.fps, v.infer_ms = fps or v.fps, t.get("inference", v.infer_ms)
        if verdict.status is not Status.OK:
            v.verdict, v.guidance = "", verdict.text
            return
        v.verdict, v.guidance = verdict.text, ""
        v.prob, v.positive = verdict.positive_prob, verdict.positive
        if len(verdict.classes) > 2:
            v.class_probs = verdict.ranked
        v.heatmap = self.heatmap
