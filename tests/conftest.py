"""Shared fixtures. Tests that need the MSID images read `MPOX_DATA` (default ../shared/data/msid);
without it they skip with a reason, except in CI (`CI=true`), where a missing dataset fails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from train_host.data import default_data_dir

CLASSES = ("chickenpox", "measles", "mpox", "normal")


@pytest.fixture(scope="session")
def msid() -> Path:
    root = default_data_dir()
    if not all((root / c).is_dir() for c in CLASSES):
        msg = f"MSID images not found at {root} (set MPOX_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg}: CI must have the dataset")
        pytest.skip(msg)
    return root


def copy_subset(msid: Path, dest: Path, per_class: dict[str, int], offset: int = 0) -> Path:
    """Copy a few real images per class into a temp dataset folder (never into the repo)."""
    for cls, n in per_class.items():
        files = sorted((msid / cls).glob("*.png"))[offset : offset + n]
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, dest / cls / f.name)
    return dest


@pytest.fixture(scope="session")
def small_msid(msid: Path, tmp_path_factory) -> Path:
    """A 4-class subset of real images: 24 mpox, 8 of each other class."""
    dest = tmp_path_factory.mktemp("small_msid")
    return copy_subset(msid, dest, {"mpox": 24, "chickenpox": 8, "measles": 8, "normal": 8})
