"""What the health worker sees: the camera view, the square the model reads with its heat-map, the
verdict with a probability bar, and a footer (disclaimer, model, speed).

Sizes follow the canvas height so the text is legible on a 480x320 kit screen and on 1080p.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from device.i18n import N_, _
from device.live.fonts import Typesetter
from device.live.overlay import blend_heat

WHITE, GREY, BLACK = (255, 255, 255), (170, 170, 170), (0, 0, 0)
LIKELY, UNLIKELY, STATUS = (40, 40, 220), (60, 160, 60), (80, 220, 255)  # BGR
DISCLAIMER = N_("Screening aid - not a diagnosis")
NO_RESULT = N_("no result on this frame")
HEAT_OFF = N_("heat-map off (h)")
HINT = N_("Fill the square with the lesion")


@dataclass(frozen=True)
class Slot:
    """Where a kind of text goes: size (Hershey-style scale at 480x320), weight, left edge in
    layout units, and how many lines it may wrap to. Every translation must fit its slot at
    480x320 without shrinking (tests/test_languages.py)."""

    scale: float
    bold: bool
    x: float
    lines: int = 1


SLOTS = {
    "headline": Slot(0.85, True, 18),  # the verdict, or guidance instead of one
    "subline": Slot(0.5, False, 18),  # P(mpox) 0.83 / "no result on this frame"
    "status": Slot(0.55, True, 18),  # DEMO, no camera, ...
    "hint": Slot(0.45, False, 8),
    "disclaimer": Slot(0.5, False, 8),
    "footer": Slot(0.4, False, 8),  # speed, model, signed
    "notice": Slot(0.6, True, 18, lines=2),  # saved case, disk full, FROZEN
}


@dataclass
class View:
    """One screen's worth of state, all plain values (the renderer holds no model)."""

    verdict: str = ""  # "Mpox likely" / "Mpox unlikely"; "" while there is no result
    positive: bool = False
    prob: float = 0.0  # smoothed P(positive class)
    threshold: float = 0.5
    positive_class: str = "mpox"
    class_probs: tuple[tuple[str, float], ...] = ()  # shown for multi-class bundles
    status: str = ""  # "no camera - retrying in 2 s", "FROZEN - f to resume", ...
    guidance: str = ""  # instead of a verdict on a poor frame: "Hold steady", "More light", ...
    hint: str = field(default_factory=lambda: _(HINT))
    fps: float = 0.0
    infer_ms: float = 0.0
    model: str = ""
    heatmap: bool = True


@dataclass(frozen=True)
class Geometry:
    """Where a frame of a given size lands on the canvas, computed once per frame size."""

    scale: float
    x: int
    y: int
    w: int
    h: int
    square: tuple[int, int, int]  # x, y, side of the model's centre-square crop on the canvas


def geometry(frame_w: int, frame_h: int, canvas_w: int, canvas_h: int) -> Geometry:
    scale = min(canvas_w / frame_w, canvas_h / frame_h)
    w, h = round(frame_w * scale), round(frame_h * scale)
    x, y = (canvas_w - w) // 2, (canvas_h - h) // 2
    side = min(w, h)
    return Geometry(scale, x, y, w, h, (x + (w - side) // 2, y + (h - side) // 2, side))


class Renderer:
    def __init__(
        self,
        width: int,
        height: int,
        heat_floor: float = 0.35,
        heat_alpha: float = 0.5,
        font: str = "auto",
    ):
        self.size = (width, height)
        self.type = Typesetter(font)
        self.unit = height / 320.0  # 1 on a 480x320 kit screen, 3.4 on 1080p
        self.heat_floor, self.heat_alpha = heat_floor, heat_alpha
        self._geom: dict[tuple[int, int], Geometry] = {}

    def base(self, frame: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """The camera frame fitted into the canvas (black bars where aspects differ)."""
        fh, fw = frame.shape[:2]
        g = self._geom.get((fw, fh))
        if g is None:
            g = self._geom[(fw, fh)] = geometry(fw, fh, *self.size)
        canvas = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        canvas[g.y : g.y + g.h, g.x : g.x + g.w] = cv2.resize(
            frame, (g.w, g.h), interpolation=cv2.INTER_AREA if g.scale < 1 else cv2.INTER_LINEAR
        )
        return canvas, g

    def heat(self, canvas: np.ndarray, g: Geometry, cam: np.ndarray) -> None:
        """The heat-map over the square the model read, in place."""
        x, y, side = g.square
        blend_heat(canvas[y : y + side, x : x + side], cam, self.heat_floor, self.heat_alpha)

    def status_screen(self, view: View) -> np.ndarray:
        canvas = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        self.text(canvas, view, None)
        return canvas

    def text(self, canvas: np.ndarray, view: View, g: Geometry | None) -> None:
        """Header (verdict or status, probability bar), square outline, footer; in place."""
        u = self.unit
        if g is not None:
            x, y, side = g.square
            cv2.rectangle(canvas, (x, y), (x + side - 1, y + side - 1), WHITE, max(1, round(u)))
        head = round(58 * u) if view.verdict or view.guidance else round(34 * u)
        _shade(canvas, 0, head)
        if view.guidance and not view.verdict:
            cv2.rectangle(canvas, (0, 0), (round(10 * u), head), STATUS, -1)
            self.put(canvas, "headline", view.guidance, round(27 * u), STATUS)
            self.put(canvas, "subline", _(NO_RESULT), round(50 * u), WHITE)
        if view.verdict:
            colour = LIKELY if view.positive else UNLIKELY
            cv2.rectangle(canvas, (0, 0), (round(10 * u), head), colour, -1)
            self.put(canvas, "headline", view.verdict, round(27 * u), WHITE)
            label = f"P({view.positive_class}) {view.prob:.2f}"
            self.put(canvas, "subline", label, round(50 * u), WHITE)
            self._bar(canvas, view, (round(150 * u), round(40 * u)))
        if view.status:
            y = head + round(24 * u) if view.verdict or view.guidance else round(24 * u)
            self.put(canvas, "status", view.status, y, STATUS)
        if len(view.class_probs) > 2:
            self._class_list(canvas, view.class_probs, head)
        foot = round(40 * u)
        if view.hint and g is not None:
            self.put(canvas, "hint", view.hint, canvas.shape[0] - foot - round(8 * u), GREY)
        _shade(canvas, canvas.shape[0] - foot, canvas.shape[0])
        self.put(canvas, "disclaimer", _(DISCLAIMER), canvas.shape[0] - round(23 * u), WHITE)
        speed = f"{view.fps:4.1f} fps  {view.infer_ms:4.1f} ms  {view.model}"
        speed += "" if view.heatmap else f"  {_(HEAT_OFF)}"
        self.put(canvas, "footer", speed, canvas.shape[0] - round(7 * u), GREY)

    def notice(self, canvas: np.ndarray, text: str) -> None:
        """A message across the middle of a finished canvas (e.g. FROZEN), up to two lines."""
        u = self.unit
        lines = self.lines("notice", text)
        step = round(26 * u)
        y = canvas.shape[0] // 2 - step * (len(lines) - 1) // 2
        _shade(canvas, y - round(22 * u), y + step * (len(lines) - 1) + round(10 * u))
        for i, line in enumerate(lines):
            self.put(canvas, "notice", line, y + i * step, STATUS)

    # -- text -------------------------------------------------------------------------------------
    def room(self, slot: str) -> int:
        """Pixels a line of `slot` may take on this canvas."""
        return self.size[0] - round(SLOTS[slot].x * self.unit) - round(6 * self.unit)

    def lines(self, slot: str, text: str) -> list[str]:
        """`text` word-wrapped into the slot's lines (the last line takes the rest)."""
        spec, room = SLOTS[slot], self.room(slot)
        px = self.type.px(spec.scale * self.unit)
        words, out = text.split(), []
        while words and len(out) < spec.lines - 1:
            n = len(words)
            while n > 1 and self.type.width(" ".join(words[:n]), px, spec.bold) > room:
                n -= 1
            out.append(" ".join(words[:n]))
            words = words[n:]
        return [*out, " ".join(words)] if words else out or [""]

    def overflow(self, slot: str, text: str) -> int:
        """Pixels by which `text` overruns its slot at full size (0: it fits)."""
        spec = SLOTS[slot]
        px = self.type.px(spec.scale * self.unit)
        widest = max(self.type.width(line, px, spec.bold) for line in self.lines(slot, text))
        return max(0, widest - self.room(slot))

    def put(self, canvas: np.ndarray, slot: str, text: str, y: int, colour) -> None:
        """One line in `slot`'s size at height `y`, shrunk to fit the width (a long model name
        or an untranslated string), with a drop shadow for contrast over any skin."""
        spec, room = SLOTS[slot], self.room(slot)
        px = self.type.px(spec.scale * self.unit)
        width = self.type.width(text, px, spec.bold)
        if width > room > 0:
            px = max(6, int(px * room / width))
        x, off = round(spec.x * self.unit), max(1, round(self.unit))
        self.type.draw(canvas, text, (x + off, y + off), px, BLACK, spec.bold)
        self.type.draw(canvas, text, (x, y), px, colour, spec.bold)

    def _bar(self, canvas: np.ndarray, view: View, origin: tuple[int, int]) -> None:
        """P(positive) as a bar with a tick at the manifest threshold."""
        u = self.unit
        x0, y0 = origin
        x1, y1 = canvas.shape[1] - round(12 * u), y0 + round(12 * u)
        if x1 - x0 < 20 * u:
            return
        cv2.rectangle(canvas, (x0, y0), (x1, y1), GREY, max(1, round(u)))
        fill = x0 + round((x1 - x0) * min(max(view.prob, 0.0), 1.0))
        cv2.rectangle(canvas, (x0, y0), (fill, y1), LIKELY if view.positive else UNLIKELY, -1)
        tick = x0 + round((x1 - x0) * view.threshold)
        reach = round(4 * u)
        cv2.line(canvas, (tick, y0 - reach), (tick, y1 + reach), WHITE, max(1, round(u)))

    def _class_list(self, canvas: np.ndarray, probs, top: int) -> None:
        u = self.unit
        x = canvas.shape[1] - round(150 * u)
        _shade(canvas, top, top + round(16 * u) * len(probs) + round(6 * u), x)
        px = self.type.px(0.42 * u)
        for i, (name, p) in enumerate(probs):
            y = top + round(16 * u) * (i + 1)
            self.type.draw(canvas, f"{name[:10]:<10} {p:.2f}", (x + round(6 * u), y), px, WHITE)


def _shade(canvas: np.ndarray, y0: int, y1: int, x0: int = 0) -> None:
    """Darken a band so white text reads over any skin tone or lighting."""
    band = canvas[y0:y1, x0:]
    band[:] = band >> 2
