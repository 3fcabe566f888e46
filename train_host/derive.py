"""A new bundle version from a verified one: its files copied from the verified bytes, some
replaced, and a new manifest (version, time, the change) and card, unsigned until
`mpox-screen bundle sign`. Written in a temporary folder and renamed whole, so a failed run
leaves no half bundle. Used by the site calibration and the gate refit."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from device.core.bundle import Bundle, sha256
from train_host import UserError
from train_host.export.manifest import write


def new_folder(out: Path) -> Path:
    """Refuse an existing `--out` before any work: a new version never overwrites a bundle."""
    if out.exists():
        raise UserError(f"--out {out} exists: this writes a new bundle folder")
    return out


def derive(
    old: Bundle,
    out: Path,
    suffix: str,
    edit: Callable[[dict], None],
    files: dict[str, bytes] | None = None,
) -> None:
    """`suffix`: appended to the model version (`+suffix.YYYYMMDDTHHMM`: two versions made on one
    day differ); `edit`: changes the copied manifest in place; `files`: replaced files (each
    pin's sha256 and size follow)."""
    new_folder(out)
    files = files or {}
    stage = out.with_name(f".{out.name}.new")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for pin in old.manifest.pinned():
        if pin is not old.manifest.card:  # the card is written anew
            (stage / pin.file).write_bytes(files.get(pin.file, old.blobs[pin.file]))
    m = copy.deepcopy(dict(old.manifest.document))  # the verified manifest, not a new read
    pins = dict(m["files"]) | ({m["ood"]["file"]: m["ood"]} if m.get("ood") else {})
    for name, data in files.items():
        pins[name] |= {"sha256": sha256(stage / name), "size": len(data)}
    now = datetime.now(timezone.utc)
    m["model"]["version"] = f"{m['model']['version']}+{suffix}.{now:%Y%m%dT%H%M}"
    m["created"] = now.isoformat(timespec="seconds")
    edit(m)
    write(stage, m)
    stage.rename(out)
