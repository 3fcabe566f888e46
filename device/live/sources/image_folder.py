"""`dir://PATH`, a glob, or one photo: stored images as a frame stream (demo, tests, replay)."""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np

from device import DeviceError
from device.config import SourceConfig
from device.core.images import EXTENSIONS, UnreadableImage, read_rgb
from device.live.sources import Frame, SourceUnavailable, register

log = logging.getLogger(__name__)


class ImageFolder:
    live = False

    def __init__(self, pattern: str, opts: SourceConfig):
        self.paths, self.pattern = _expand(pattern), pattern
        self.max_pixels = opts.max_pixels
        self.description = f"{len(self.paths)} images from {pattern}"
        self.loop, self.period = opts.loop, (1.0 / opts.pace_fps if opts.pace_fps else 0.0)
        self.next_index, self.next_time = 0, 0.0

    def read(self) -> Frame | None:
        if self.next_index >= len(self.paths):
            if not self.loop:
                return None
            self.next_index = 0
        path = self.paths[self.next_index]
        self.next_index += 1
        if self.period:
            time.sleep(max(0.0, self.next_time - time.monotonic()))
            self.next_time = time.monotonic() + self.period
        try:
            image = cv2.cvtColor(read_rgb(path, self.max_pixels), cv2.COLOR_RGB2BGR)
        except UnreadableImage as e:
            if not path.parent.exists():
                raise SourceUnavailable(f"{path.parent} is gone") from None
            # refused once, then left out: a file that cannot be read now will not be later
            log.warning("source: %s left out: %s", path, e)
            self.paths.remove(path)
            self.next_index -= 1
            if not self.paths:
                raise DeviceError(
                    f"source {self.pattern}: none of its images can be read"
                ) from None
            return Frame(np.empty((0, 0, 3), np.uint8))  # dropped and counted by the loop
        return Frame(image)

    def close(self) -> None:
        pass


MAX_FILES = 100_000  # a folder or glob larger than any clinic's photos: refused, not walked


def _expand(pattern: str) -> list[Path]:
    """The photos a pattern names, each once: links to folders are not followed (a link to
    `/` would walk the whole file system, a link to its own folder loop), a linked photo is
    taken once by its real path, and the walk is capped."""
    try:
        return _photos(pattern)
    except OSError as e:  # a name too long, a folder that cannot be listed
        raise DeviceError(f"source {pattern[:200]}: {e.strerror or e}") from None


def _photos(pattern: str) -> list[Path]:
    if glob.has_magic(pattern):
        parts = Path(pattern).parts
        fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
        root, wanted = Path(*parts[:fixed]) if fixed else Path("."), parts[fixed:]
        found = (
            p for p in _walk(root, all_files=True) if _match(wanted, p.relative_to(root).parts)
        )
    elif Path(pattern).is_dir():
        found = _walk(Path(pattern))
    elif Path(pattern).is_file():
        found = iter([Path(pattern)])
    else:
        raise DeviceError(f"source {pattern}: no such file or folder")
    paths, seen = [], set()
    for p in found:
        real = p.resolve()
        if p.is_file() and real not in seen:
            seen.add(real)
            paths.append(p)
    if not paths:
        raise DeviceError(f"source {pattern}: no images found")
    return sorted(paths)


def _walk(root: Path, all_files: bool = False):
    """Files under `root`, links to folders not followed; at most MAX_FILES looked at."""
    n = 0
    for folder, dirs, files in os.walk(root):  # followlinks=False
        dirs.sort()
        n += len(files) + len(dirs)
        if n > MAX_FILES:
            raise DeviceError(f"source {root}: more than {MAX_FILES:,} files under it")
        for f in files:
            if all_files or Path(f).suffix.lower() in EXTENSIONS:
                yield Path(folder, f)


def _match(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """glob's rules on path parts: `**` any number of folders, `*` within one part, hidden
    names only by a pattern part that starts with a dot."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    if not parts or (parts[0].startswith(".") and not pattern[0].startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(pattern[1:], parts[1:])


register("dir")(ImageFolder)
