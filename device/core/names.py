"""One validator for every name that comes from outside the code: a manifest's model and file
names, a database row's image names, a bundle folder. A name is a plain file name (no folder,
no `..`, no leading dot, no control characters) of bounded length, and the path it names is
resolved inside its folder, so no such value can make the kit write, copy or delete elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from device import DeviceError

MAX_NAME = 100  # well under every file system's 255 bytes, with room for suffixes and stamps
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def plain_name(value: object, what: str, max_len: int = MAX_NAME) -> str:
    """`value` if it is a plain name, else a one-line DeviceError naming `what`."""
    if not isinstance(value, str) or not value:
        raise DeviceError(f"{what}: must be a non-empty text, not {type(value).__name__}")
    if len(value) > max_len:
        raise DeviceError(f"{what}: a name of {len(value)} characters (at most {max_len})")
    if not _PLAIN.fullmatch(value) or ".." in value:
        shown = value.encode("unicode_escape").decode()[:60]
        raise DeviceError(
            f"{what}: {shown!r} is not a plain file name (letters, digits, . _ + -; no folders)"
        )
    return value


def inside(folder: Path, value: object, what: str) -> Path:
    """folder/value for a plain name `value`, checked to resolve inside `folder`."""
    path = Path(folder) / plain_name(value, what)
    if path.resolve().parent != Path(folder).resolve():
        raise DeviceError(f"{what}: {value!r} leads out of {folder} (a link)")
    return path


def is_plain(value: object, max_len: int = MAX_NAME) -> bool:
    try:
        plain_name(value, "", max_len)
    except DeviceError:
        return False
    return True
