"""Reading and writing torch files safely: tensors only on read, atomic on write."""

from __future__ import annotations

from pathlib import Path

import torch

from train_host import UserError


def load(path: Path, what: str) -> object:
    """`torch.load` with `weights_only=True`; a missing or unreadable file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read {what} {path}: {str(exc).splitlines()[0]}") from exc


def save(obj: object, path: Path) -> None:
    """Write to a temp file, then rename: a crash never leaves half a checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
