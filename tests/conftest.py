"""Shared fixtures. Tests that need the MSID images read `MPOX_DATA` (default ../shared/data/msid);
without it they skip with a reason, except in CI (`CI=true`), where a missing dataset fails."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from train_host.data import default_data_dir

# session fixtures that run a real export or gate fit (minutes): their tests are slow
EXPORTS = {"bundle", "gate_file"}
# What a kit's install (`.[device,tflite,dev]`) lacks: a test module importing any of these (at
# any depth of the module) is the host's; `--kit` runs the others
HOST_ONLY = ("torch.", "torchvision.", "onnx.", "onnxsim.", "captum.", "litert_torch.")
HOST_ONLY += ("train_host.",)
KIT_SAFE = ("train_host.data.", "train_host.UserError.")  # numpy, OpenCV and Pillow only


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--kit", action="store_true", help="only the tests a kit's install can run (no torch)"
    )


def host_only(path: Path) -> bool:
    """Whether the test module imports something only the host's install has."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [f"{node.module}.{a.name}" for a in node.names]
    return any(
        (n + ".").startswith(HOST_ONLY) and not (n + ".").startswith(KIT_SAFE) for n in names
    )


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    test = collection_path.name.startswith("test_") and collection_path.suffix == ".py"
    return True if config.getoption("--kit") and test and host_only(collection_path) else None


def pytest_collection_modifyitems(items) -> None:
    """The fast lane (`-m "not slow"`) leaves out every test that needs a freshly exported
    bundle, whichever fixture brings it in."""
    for item in items:
        if EXPORTS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


CLASSES = ("chickenpox", "measles", "mpox", "normal")


@pytest.fixture(scope="session", autouse=True)
def state_directory(tmp_path_factory) -> Path:
    """Saved cases of every daemon a test starts (in-process or not) go to a temporary folder,
    as systemd's StateDirectory= does for the service, never into the checkout."""
    path = tmp_path_factory.mktemp("state")
    os.environ["STATE_DIRECTORY"] = str(path)
    return path


@pytest.fixture(autouse=True)
def english():
    """The kit's language is process-wide: a test that switches it switches it back."""
    yield
    from device import i18n

    i18n.use("en")


def require(ok: bool, why: str) -> None:
    """What a test needs from the machine (the dataset, a tool, a build): skipped with the reason
    here, a failure under CI=true, where `.ci/run` must provide it."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why}: CI must provide it (.ci/run)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def msid() -> Path:
    root = default_data_dir()
    ok = all((root / c).is_dir() for c in CLASSES)
    require(ok, f"MSID images not found at {root} (set MPOX_DATA)")
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


MODELS = Path(__file__).resolve().parent.parent / "models"


def fast_config(**kw):
    """A TrainConfig small enough for CI: 64 px, a few epochs, no worker processes."""
    from train_host.train import TrainConfig

    base = dict(
        input_size=64,
        epochs=12,
        batch_size=16,
        lr=3e-3,
        warmup_epochs=1,
        patience=12,
        num_workers=0,
        seed=0,
    )
    return TrainConfig(**{**base, **kw})


def run_cli(module: str, *args, ok: bool = True, timeout: int = 900, mem_mb: int | None = None):
    """Run `python -m module args` as a user would; assert success unless ok=False. `mem_mb`
    caps the address space (a regression that balloons fails fast instead of taking the
    machine down)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=None if mem_mb is None else lambda: _cap_memory(mem_mb),
    )
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _cap_memory(mb: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))


def one_line_error(proc, rc: int = 2) -> str:
    """A user error's outcome: exit status `rc`, one line on stderr, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == rc and "Traceback" not in err, (proc.returncode, err[-2000:])
    assert len(err.splitlines()) == 1, err[-2000:]
    return err


def edit_manifest(root: Path, change) -> None:
    """Apply `change(manifest_dict)` to a bundle's manifest.json in place."""
    m = json.loads((root / "manifest.json").read_text())
    change(m)
    (root / "manifest.json").write_text(json.dumps(m))


@pytest.fixture(scope="session")
def gate_file(msid, tmp_path_factory) -> Path:
    """The committed binary checkpoint's "cannot judge" gate (`mpox-train gate --checkpoint`),
    fitted on every eighth of MSID's training photos and of the two collections the bundle
    fixture is gated on (the export tests need a gate, not the shipped one's precision)."""
    out = tmp_path_factory.mktemp("gate") / "checkpoint.gate.npz"
    shared = msid.resolve().parent
    run_cli(
        "train_host.cli",
        "gate",
        "--checkpoint",
        MODELS / "micrompoxnet-binary" / "checkpoint.pt",
        "--data",
        msid,
        "--collection",
        shared / "idscabies",
        "--collection",
        shared / "skin8",
        "--stride",
        "8",
        "--no-report",
        "--out",
        out,
    )
    return out


@pytest.fixture(scope="session")
def bundle(msid, gate_file, tmp_path_factory) -> Path:
    """The committed binary checkpoint exported by `mpox-train export` (gate included) on its own
    split: 128 training images calibrate, the 201 val + test images and the idscabies and skin8
    collections verify. (Gated on bites/ too, this older model's int8 TFLite file fails the
    firm-decision agreement, 0.994 < 0.995: the kit's default is gated on every collection, this
    test fixture on the two it was made with.)"""
    out = tmp_path_factory.mktemp("bundle") / "micrompoxnet-binary"
    shared = msid.resolve().parent
    src = MODELS / "micrompoxnet-binary"
    notes = out.parent / "notes.md"
    notes.write_text("## Comparison\n\n| model | AUC |\n|---|---|\n| test row | 0.5 |\n")
    run_cli(
        "train_host.cli",
        "export",
        "--checkpoint",
        src / "checkpoint.pt",
        "--calib-data",
        msid,
        "--card-notes",
        notes,
        "--gate-collection",
        shared / "idscabies",
        "--gate-collection",
        shared / "skin8",
        "--gate",
        gate_file,
        "--out",
        out,
    )
    return out
