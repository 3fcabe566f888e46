"""Stored photos for `classify` and `dir://`: find them under paths, decode them like the host.

Photos come from anywhere (a USB stick, a phone), so reading is defensive: only regular files
are opened (a FIFO named .png would block for ever), the pixel count is read from the header
before decoding (a 1 MB PNG can unpack to 3.6 GB), each image is decoded once, and 16-bit,
integer and float images are scaled to 8 bits by what their type means.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 120_000_000  # a 108 MP phone photo fits

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
TINY = 32  # below this many pixels on a side a verdict means little: warn


class UnreadableImage(Exception):
    pass


@dataclass(frozen=True)
class Found:
    """A path to screen, or a problem met while looking (an unsearchable folder, a bad name)."""

    path: Path
    problem: str | None = None


def find_images(paths: list[Path]) -> Iterator[Found]:
    """Files as given (any extension, so a wrong one is reported), folders recursively, sorted;
    a folder that cannot be listed is reported and the walk goes on."""
    for p in paths:
        try:
            is_dir = p.is_dir()
        except OSError as e:
            yield Found(p, e.strerror or str(e))
            continue
        if not is_dir:
            yield Found(p)
            continue
        problems: list[Found] = []
        found = []
        for folder, dirs, files in os.walk(p, onerror=_collect(problems)):
            dirs.sort()
            found += [Path(folder, f) for f in files if Path(f).suffix.lower() in EXTENSIONS]
        yield from problems
        yield from (Found(f) for f in sorted(found))


def _collect(problems: list[Found]):
    def onerror(e: OSError) -> None:
        problems.append(Found(Path(e.filename), e.strerror or str(e)))

    return onerror


MAX_FILE_BYTES = 256 << 20  # a 108 MP JPEG is ~40 MB, a 40 MP 16-bit TIFF ~240 MB
MAX_RAW_BYTES = 360_000_000  # the decoded array: a 120 MP 8-bit RGB photo's size
STRIP = 512  # rows converted at a time: float intermediates stay a few MB wide
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}  # IHDR colour type -> channels OpenCV makes


@dataclass(frozen=True)
class Header:
    """What a photo declares before a pixel is decoded."""

    size: tuple[int, int]
    orientation: int  # EXIF 1-8
    bytes_per_pixel: int  # of the array the decoder will make

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]


def _header(path: Path) -> Header:
    """From the header alone (Pillow's lazy open; no pixel and, for PNG, no chunk after the
    header is read: its getexif() decodes the whole image). A format Pillow cannot size is
    refused: the budget below cannot be checked for it."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the kit checks itself
    try:
        with Image.open(path) as im:
            return Header(im.size, _orientation(im), _bytes_per_pixel(im, path))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        why = type(e).__name__
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    tiff = _tiff_header(path)  # float and multi-sample TIFFs Pillow does not open
    if tiff is None:
        raise UnreadableImage(f"not an image format the kit reads ({why})")
    return tiff


_TIFF_TAGS = {256: "width", 257: "height", 258: "bits", 277: "samples"}


def _tiff_header(path: Path) -> Header | None:
    """Width, height, bits and samples from a classic TIFF's first IFD (what OpenCV decodes)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[:4] not in (b"II*\0", b"MM\0*"):
            return None
        end = "<" if head[:2] == b"II" else ">"
        f.seek(struct.unpack(end + "I", head[4:])[0])
        raw = f.read(2)
        if len(raw) < 2:
            return None
        count = min(struct.unpack(end + "H", raw)[0], 512)
        entries = f.read(12 * count)
    found = {"bits": 8, "samples": 1}
    for i in range(len(entries) // 12):
        tag, kind, n, value = struct.unpack(end + "HHII", entries[12 * i : 12 * i + 12])
        if tag in _TIFF_TAGS:
            if kind == 3:  # SHORT: the value sits in the first two bytes
                value = struct.unpack(end + "H", entries[12 * i + 8 : 12 * i + 10])[0]
            if tag == 258 and n > 1:  # one BitsPerSample per sample, stored elsewhere: 32 at most
                value = 32
            found[_TIFF_TAGS[tag]] = value
    if "width" not in found or "height" not in found:
        return None
    per_pixel = max(1, found["samples"]) * max(1, -(-found["bits"] // 8))
    return Header((found["width"], found["height"]), 1, per_pixel)


def _orientation(im: Image.Image) -> int:
    if im.format == "PNG":  # an eXIf chunk before the pixels is in info; getexif would decode
        raw = im.info.get("exif")
        exif = Image.Exif()
        if raw:
            try:
                exif.load(raw)
            except (OSError, ValueError, TypeError, SyntaxError):
                return 1
    else:
        try:
            exif = im.getexif()
        except (OSError, ValueError, TypeError, SyntaxError):
            return 1
    try:
        tag = int(exif.get(0x0112, 1))
    except (ValueError, TypeError):
        return 1
    return tag if 1 <= tag <= 8 else 1


def _bytes_per_pixel(im: Image.Image, path: Path) -> int:
    """Bytes per pixel of OpenCV's decoded array: PNG by its IHDR (Pillow reports 16-bit RGBA
    as 8-bit "RGBA"), other formats by Pillow's mode."""
    if im.format == "PNG":
        with open(path, "rb") as f:
            ihdr = f.read(26)
        if len(ihdr) == 26:
            depth, colour = ihdr[24], ihdr[25]
            return _PNG_CHANNELS.get(colour, 4) * (2 if depth == 16 else 1)
    bands = len(im.getbands())
    if im.mode.startswith("I;16"):
        return 2 * bands
    if im.mode in ("I", "F"):
        return 4 * bands
    return max(bands, 1)


def _orient(img: np.ndarray, tag: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1-8), as Pillow's exif_transpose does."""
    if tag in (2, 4, 5, 7):
        img = img[:, ::-1]
    turns = {3: 2, 4: 2, 5: 1, 6: 3, 7: 3, 8: 1}.get(tag, 0)
    return np.ascontiguousarray(np.rot90(img, turns))


def to_unit(a: np.ndarray, top: float | None = None) -> np.ndarray:
    """Any pixel type to float32 in [0, 1] by what the type means: 8/16-bit by their range,
    float as [0, 1] (brighter values clip), other integers by the largest value present
    (`top`: of the whole image, when `a` is a strip of it)."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    f = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(f, 0.0, 1.0)
    if top is None:
        top = float(f.max()) if f.size else 0.0
    scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return np.clip(f / scale, 0.0, 1.0)


def to_rgb8(raw: np.ndarray) -> np.ndarray:
    """OpenCV's decoded array (grey, BGR or BGRA, any depth) -> HxWx3 uint8 RGB, alpha
    composited on white as the host does. Converted in strips of rows, so the float
    intermediates of a large 16-bit or alpha image cost megabytes, not gigabytes."""
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.dtype == np.uint8 and raw.shape[2] in (1, 3):
        code = cv2.COLOR_GRAY2RGB if raw.shape[2] == 1 else cv2.COLOR_BGR2RGB
        return cv2.cvtColor(raw, code)
    if raw.dtype not in (np.uint8, np.uint16) and not np.issubdtype(raw.dtype, np.floating):
        top = float(raw.max()) if raw.size else 0.0  # other integers: by the largest value
        return _strips(raw, lambda a: _to_rgb8_strip(a, top))
    return _strips(raw, _to_rgb8_strip)


def _strips(raw: np.ndarray, convert) -> np.ndarray:
    out = np.empty((raw.shape[0], raw.shape[1], 3), np.uint8)
    for r in range(0, raw.shape[0], STRIP):
        out[r : r + STRIP] = convert(raw[r : r + STRIP])
    return out


def _to_rgb8_strip(raw: np.ndarray, top: float | None = None) -> np.ndarray:
    unit = to_unit(raw, top)
    if unit.shape[2] == 4:
        alpha = unit[..., 3:]
        unit = unit[..., :3] * alpha + (1.0 - alpha)
    elif unit.shape[2] == 2:  # grey + alpha
        unit = np.repeat(unit[..., :1] * unit[..., 1:] + (1.0 - unit[..., 1:]), 3, axis=2)
    elif unit.shape[2] == 1:
        unit = np.repeat(unit, 3, axis=2)
    bgr = np.uint8(np.round(unit[..., :3] * 255.0))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """HxWx3 uint8 RGB: EXIF orientation applied, alpha composited on white (as train_host).
    Memory is bounded by the input's declared size before anything large is read: the file's
    size, the header's pixels and the decoded array's bytes (bit depth and channels)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UnreadableImage(e.strerror or str(e)) from None
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableImage("not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise UnreadableImage(f"a file of {st.st_size >> 20} MB (at most {MAX_FILE_BYTES >> 20})")
    head = _header(path)
    w, h = head.size
    if head.pixels > max_pixels:
        raise UnreadableImage(f"{w}x{h} pixels is more than the limit of {max_pixels:,}")
    if head.pixels * head.bytes_per_pixel > MAX_RAW_BYTES:
        raise UnreadableImage(
            f"{w}x{h} pixels at {head.bytes_per_pixel} bytes each is more than "
            f"{MAX_RAW_BYTES // 1_000_000} MB decoded"
        )
    try:
        buf = np.fromfile(path, dtype=np.uint8, count=MAX_FILE_BYTES)
        raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except (OSError, MemoryError, cv2.error) as e:
        raise UnreadableImage(getattr(e, "strerror", None) or type(e).__name__) from None
    if raw is None or raw.size == 0:
        raise UnreadableImage("not a readable image")
    if raw.shape[0] * raw.shape[1] > max_pixels or raw.nbytes > MAX_RAW_BYTES:
        raise UnreadableImage(f"{raw.shape[1]}x{raw.shape[0]} pixels: its header understated it")
    return _orient(to_rgb8(raw), head.orientation)


def write_image(path: Path | str, image_bgr: np.ndarray) -> bool:
    """Encode by the suffix in memory and write with Python's file API: OpenCV's imwrite
    crashes (SIGSEGV) on a path that is not valid UTF-8, which a USB stick's names can be."""
    try:
        ok, buf = cv2.imencode(Path(path).suffix or ".png", image_bgr)
    except cv2.error:
        return False
    if not ok:
        return False
    try:
        with open(path, "wb") as f:
            f.write(buf.tobytes())
    except OSError:
        return False
    return True


def tiny(image: np.ndarray) -> bool:
    return min(image.shape[:2]) < TINY
