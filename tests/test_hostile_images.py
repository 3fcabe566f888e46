"""Memory and time bounded by what a photo declares, not by luck (issue 30): header bombs of
PNG (with an eXIf chunk after the pixels, where Pillow's getexif decodes everything), deep
16-bit RGBA under the pixel limit, formats Pillow cannot size, files far larger than their
pixels, links that make a folder source walk the file system or loop. Every run memory-capped
in a subprocess (RLIMIT_AS), so a regression fails fast instead of taking the machine down."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.core.images import MAX_FILE_BYTES, UnreadableImage, read_rgb
from tests.conftest import run_cli
from tests.test_hostile_input import photo  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[1]
MEM = 1500  # MB of address space: the kit's classify with ONNX Runtime needs ~0.2 GB resident


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_header(w: int, h: int, depth: int = 8, colour: int = 2, exif_after: bool = False) -> bytes:
    """A PNG that declares w x h but holds a few bytes of pixels (a 'decompression bomb'
    without the bytes): a kit must refuse it from the header."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    exif = _chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0")
    body = _chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + body + (exif if exif_after else b"")


BOMBS = {
    "2147483647x1.png": png_header(2147483647, 1),
    "30000x30000-exif-after.png": png_header(30000, 30000, exif_after=True),
    "16bit-rgba-119mp.png": png_header(10950, 10950, depth=16, colour=6),  # under the pixel limit
    "radiance.hdr": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 30000 +X 30000\n" + b"\0" * 64,
    "tiff-float-huge.tiff": b"II*\0\x08\0\0\0\x03\0"
    + struct.pack("<HHII", 256, 4, 1, 20000)
    + struct.pack("<HHII", 257, 4, 1, 20000)
    + struct.pack("<HHII", 258, 3, 1, 32)
    + b"\0\0\0\0",
}


@pytest.fixture
def bombs(tmp_path):
    for name, data in BOMBS.items():
        (tmp_path / name).write_bytes(data)
    with open(tmp_path / "sparse-1g.jpg", "wb") as f:  # a huge file, nothing in it
        f.truncate(1 << 30)
    return tmp_path


def test_classify_refuses_every_bomb_in_bounded_memory(bombs, photo):  # noqa: F811
    path, _ = photo
    proc = run_cli(
        "device.cli", "classify", "--json", bombs, bombs / "radiance.hdr", path,
        ok=False, timeout=120, mem_mb=MEM,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    refused = {Path(x["path"]).name: x["error"] for x in lines if "error" in x}
    assert set(refused) == {*BOMBS, "sparse-1g.jpg"}, refused
    assert "more than the limit" in refused["30000x30000-exif-after.png"]
    assert "bytes each" in refused["16bit-rgba-119mp.png"]
    assert "not an image format" in refused["radiance.hdr"]
    assert f"at most {MAX_FILE_BYTES >> 20}" in refused["sparse-1g.jpg"]
    screened = {Path(x["path"]).name for x in lines if "status" in x}
    assert screened == {"photo.png"}  # the photo (in the folder and named) is screened


FUZZ = """
import random, struct, sys, zlib
sys.path.insert(0, sys.argv[1])
from tests.test_hostile_images import png_header
from device.core.images import UnreadableImage, read_rgb
rng = random.Random(int(sys.argv[3]))
for i in range(300):
    sizes = [1, 3, 7, 64, 40000, 2**31 - 1, 2**32 - 1]
    w, h = rng.choice(sizes), rng.choice(sizes)
    data = png_header(w, h, rng.choice([1, 2, 4, 8, 16, 0, 255]), rng.choice([0, 2, 3, 4, 6, 1, 7]),
                      exif_after=rng.random() < 0.5)
    if rng.random() < 0.3:  # a torn header
        data = data[: rng.randrange(len(data))]
    path = f"{sys.argv[2]}/f{i}.png"
    open(path, "wb").write(data)
    try:
        img = read_rgb(path)
        assert img.ndim == 3 and img.shape[2] == 3
    except UnreadableImage:
        pass
print("ok")
"""


@pytest.mark.parametrize("seed", [0, 1])
def test_png_header_fuzz_is_refused_or_read_in_bounded_memory(tmp_path, seed):
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ, str(ROOT), str(tmp_path), str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: __import__("resource").setrlimit(
            __import__("resource").RLIMIT_AS, (MEM << 20, MEM << 20)
        ),
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_a_deep_image_is_converted_in_strips(tmp_path, photo):  # noqa: F811
    """16-bit RGBA of a real photo, large: read like its 8-bit copy, in bounded memory."""
    _, rgb = photo
    big = cv2.resize(rgb, (2000, 1500))
    alpha = np.full((*big.shape[:2], 1), 65535, np.uint16)
    deep = np.concatenate([big[..., ::-1].astype(np.uint16) * 257, alpha], axis=2)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    got = read_rgb(tmp_path / "deep.png")
    assert np.abs(got.astype(int) - big).max() <= 1


def test_a_folder_source_follows_no_link_to_a_folder(tmp_path, photo):  # noqa: F811
    from device.config import SourceConfig
    from device.live.sources.image_folder import ImageFolder

    path, _ = photo
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(Path(path).read_bytes())
    (photos / "root").symlink_to("/")
    (photos / "loop").symlink_to(photos)
    (photos / "same.png").symlink_to(photos / "a.png")
    for pattern in (str(photos), f"{photos}/**/*.png", f"{photos}/*/*.png"):
        try:
            found = ImageFolder(pattern, SourceConfig()).paths
        except Exception as e:  # a glob with nothing left after the links: one line
            assert "no images found" in str(e)
            continue
        assert [p.name for p in found] == ["a.png"], (pattern, found)


def test_a_folder_source_drops_each_bomb_once_and_screens_the_rest(bombs, photo):  # noqa: F811
    from device.config import SourceConfig
    from device.live.sources import open_source

    (bombs / "z-real.png").write_bytes(Path(photo[0]).read_bytes())
    source = open_source(f"dir://{bombs}", SourceConfig(loop=True))
    frames = [source.read() for _ in range(len(BOMBS) + 8)]
    # radiance.hdr has no photo suffix: a folder walk never lists it
    dropped = [f for f in frames if f.image.size == 0]
    assert len(dropped) == len(BOMBS) - 1 + 1  # the PNG/TIFF bombs and the sparse .jpg, once
    assert {f.image.shape for f in frames if f.image.size} == {(64, 96, 3)}
    assert [p.name for p in source.paths] == ["photo.png", "z-real.png"]


def test_read_rgb_refuses_before_reading_the_file(tmp_path):
    (tmp_path / "x.png").write_bytes(BOMBS["2147483647x1.png"])
    with pytest.raises(UnreadableImage, match="more than the limit"):
        read_rgb(tmp_path / "x.png")
