"""Screen text in every language on every install.

OpenCV 4.x (what Raspberry Pi OS Bookworm's numpy 1.x resolves to) draws only ASCII with its
Hershey fonts: "Résultat" comes out with question marks. So the kit draws text with, in order:
OpenCV 5's own fonts (`cv2.FontFace`), else FreeType through Pillow with DejaVu Sans (Debian's
fonts-dejavu-core, which install.sh installs), else, on a broken install only, Hershey with the
accents taken off (legible, logged). Each label is laid out once into an alpha mask and cached,
so the frame loop only blends pixels.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import cv2
import numpy as np

from device.config import TEXT_ENGINES

log = logging.getLogger(__name__)

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
DEJAVU = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}


@dataclass(frozen=True)
class Glyphs:
    """One laid-out label: coverage 0-255, and the row of its baseline."""

    alpha: np.ndarray  # HxW uint8
    ascent: int

    @property
    def width(self) -> int:
        return self.alpha.shape[1]

    @cached_property
    def planes(self) -> tuple[np.ndarray, np.ndarray]:
        """(coverage, 255 - coverage) as HxWx3 uint8: what `draw` blends with every frame, in
        OpenCV's vector loops (numpy's uint16 arithmetic cost 19 M Cortex-A72 instructions a
        frame for the screen's ten labels)."""
        a = cv2.merge([self.alpha] * 3)
        return a, 255 - a

    @cached_property
    def _inks(self) -> dict[tuple, np.ndarray]:
        return {}

    def ink(self, colour) -> np.ndarray:
        """The label in `colour`, weighted by its coverage: the same every frame, so kept."""
        key = tuple(colour)
        if key not in self._inks:
            self._inks[key] = cv2.multiply(self.planes[0], (*map(float, key), 0.0), scale=1 / 255)
        return self._inks[key]


class OpenCVFace:
    """OpenCV 5's built-in sans font: full Unicode, variable weight."""

    name = "opencv"
    per_scale = 26.0  # pixels per Hershey font-scale unit: the old layout's sizes kept

    def __init__(self):
        self.face = cv2.FontFace("sans")

    def render(self, text: str, px: int, bold: bool) -> Glyphs:
        weight = 700 if bold else 400
        x, y, w, h = cv2.getTextSize((0, 0), text, (0, 0), self.face, px, weight)
        alpha = np.zeros((max(h, 1), max(w - x, 1) + 1), np.uint8)
        cv2.putText(alpha, text, (-x, -y), 255, self.face, px, weight)
        return Glyphs(alpha, -y)


class FreeTypeFace:
    """DejaVu Sans through Pillow's FreeType."""

    name = "freetype"
    per_scale = 23.5

    def __init__(self, folder: Path):
        from PIL import ImageFont

        self._font = lambda px, bold: ImageFont.truetype(str(folder / DEJAVU[bold]), px)

    def render(self, text: str, px: int, bold: bool) -> Glyphs:
        from PIL import Image, ImageDraw

        font = self._font(px, bold)
        left, top, right, bottom = font.getbbox(text, anchor="ls")
        image = Image.new("L", (max(right - min(left, 0), 1), max(bottom - top, 1)))
        ImageDraw.Draw(image).text((-min(left, 0), -top), text, fill=255, font=font, anchor="ls")
        return Glyphs(np.asarray(image), -top)


class HersheyFace:
    """Last resort (no OpenCV 5, no font file): ASCII only, so accents are dropped."""

    name = "hershey"
    per_scale = 30.0

    def render(self, text: str, px: int, bold: bool) -> Glyphs:
        ascii_text = ascii_only(text)
        scale, thick = px / self.per_scale, max(1, round(px / (15 if bold else 25)))
        (w, h), base = cv2.getTextSize(ascii_text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        alpha = np.zeros((h + base + thick, w + thick), np.uint8)
        cv2.putText(
            alpha, ascii_text, (0, h), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA
        )
        return Glyphs(alpha, h)


def ascii_only(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if ord(c) < 128)


def dejavu_folder() -> Path | None:
    return next((d for d in FONT_DIRS if all((d / f).is_file() for f in DEJAVU.values())), None)


def face(engine: str = "auto"):
    """The text engine `engine` names ("auto": the best this install has)."""
    if engine not in TEXT_ENGINES:
        raise ValueError(f"unknown text engine {engine!r}: one of {', '.join(TEXT_ENGINES)}")
    if engine in ("auto", "opencv") and hasattr(cv2, "FontFace"):
        return OpenCVFace()
    folder = dejavu_folder()
    if engine in ("auto", "freetype") and folder:
        return FreeTypeFace(folder)
    if engine != "hershey":
        log.warning(
            "no Unicode text engine (%s): accents dropped; install fonts-dejavu-core",
            "OpenCV < 5" if engine != "freetype" else "no DejaVu Sans",
        )
    return HersheyFace()


class Typesetter:
    """Labels in one face, cached by (text, size, weight), blended onto BGR canvases."""

    def __init__(self, engine: str = "auto", cache: int = 512):
        self.face = face(engine)
        self.render = lru_cache(maxsize=cache)(self.face.render)

    def px(self, scale: float) -> int:
        """Pixel size for a Hershey-style scale (the layout's unit)."""
        return max(6, round(scale * self.face.per_scale))

    def width(self, text: str, px: int, bold: bool = False) -> int:
        return self.render(text, px, bold).width

    def draw(self, canvas: np.ndarray, text: str, org, px: int, colour, bold=False) -> None:
        """`text` with its baseline's left end at `org`, clipped to the canvas; in place."""
        g = self.render(text, px, bold)
        x, y = org[0], org[1] - g.ascent
        h, w = g.alpha.shape
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        rows, cols = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
        region = canvas[y0:y1, x0:x1]
        kept = cv2.multiply(region, g.planes[1][rows, cols], scale=1 / 255)  # rounded, saturated
        cv2.add(kept, g.ink(colour)[rows, cols], dst=region)
