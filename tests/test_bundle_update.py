"""Signed model updates (issue 20): real Ed25519 keys, real archives, real files. Every refusal
is one line and leaves the installed bundles as they were; rollback restores the previous one."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from device.config import from_flags
from device.updates.signing import sign
from device.updates.store import BundleStore
from tests.conftest import edit_manifest, run_cli

SRC = Path(__file__).resolve().parents[1] / "models" / "micrompoxnet-distilled-binary"


@pytest.fixture
def keys(tmp_path):
    trusted = tmp_path / "keys"
    trusted.mkdir()
    run_cli("device.cli", "bundle", "keygen", tmp_path / "release.key")
    shutil.copy(tmp_path / "release.pub", trusted / "release.pub")
    run_cli("device.cli", "bundle", "keygen", tmp_path / "stranger.key")
    return trusted


def make_bundle(tmp_path, name: str, created: str, key: Path | None) -> Path:
    """The default bundle's int8 ONNX file and OOD parameters, made at `created`, signed."""
    out = tmp_path / name
    out.mkdir()
    for f in ("model.int8.onnx", "ood.npz", "card.md"):
        shutil.copy(SRC / f, out / f)
    m = json.loads((SRC / "manifest.json").read_text())
    m["files"] = {"model.int8.onnx": m["files"]["model.int8.onnx"]}
    m["created"] = created
    (out / "manifest.json").write_text(json.dumps(m))
    if key:
        sign(out, key)
    return out


def snapshot(store: Path) -> dict:
    return {
        str(p.relative_to(store)): (p.readlink() if p.is_symlink() else p.read_bytes())
        for p in sorted(store.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def install(store, keys, src, *extra, ok=True):
    args = ("--store", store, "--keys", keys, "install", src, "--no-restart", *extra)
    return run_cli("device.cli", "bundle", *args, ok=ok)


@pytest.fixture
def installed(tmp_path, keys):
    store = tmp_path / "store"
    first = make_bundle(tmp_path, "v1", "2026-11-01T00:00:00+00:00", tmp_path / "release.key")
    assert "signed by release.pub" in install(store, keys, first).stdout
    return store


def test_signed_bundle_installs_and_the_daemon_runs_it(tmp_path, keys, installed, monkeypatch):
    from device.live.daemon import Daemon

    second = make_bundle(tmp_path, "v2", "2026-11-20T00:00:00+00:00", tmp_path / "release.key")
    archive = tmp_path / "v2.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(second, arcname="micrompoxnet-distilled-binary")
    install(installed, keys, archive)
    listing = run_cli("device.cli", "bundle", "--store", installed, "--keys", keys, "list").stdout
    assert listing.count("signed by release.pub") == 2
    assert "* micrompoxnet-distilled-binary-20261120" in listing
    assert "- micrompoxnet-distilled-binary-20261101" in listing
    cfg = from_flags(
        bundle=str(installed / "current"),
        keys_dir=str(keys),
        display="null",
        source="demo://",
        max_frames=2,
        log_dir=str(tmp_path / "logs"),
        precision="int8",
    )
    daemon = Daemon(cfg)
    assert daemon.view.model.endswith("signed") and "unsigned" not in daemon.view.model
    assert daemon.run() == 0
    back = run_cli(
        "device.cli", "bundle", "--store", installed, "--keys", keys, "rollback", "--no-restart"
    )
    assert "20261101" in back.stdout
    assert (installed / "current").resolve().name.endswith("-20261101T000000Z")


def _flip(path: Path, at: int = -50) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


def _flip_threshold(folder: Path) -> None:
    """One flipped bit in the manifest that keeps it valid: a digit of the threshold."""
    path = folder / "manifest.json"
    _flip(path, path.read_bytes().index(b'"threshold": 0.') + len(b'"threshold": 0.') + 1)


def _rehash(folder: Path) -> None:
    """An attacker's edit: change the model file, write its new hash into the manifest, keep
    the old signature (the bundle itself is then consistent)."""
    _flip(folder / "model.int8.onnx")
    digest = hashlib.sha256((folder / "model.int8.onnx").read_bytes()).hexdigest()
    edit_manifest(folder, lambda m: m["files"]["model.int8.onnx"].update(sha256=digest))


def _evil_archive(tmp_path, good: Path) -> Path:
    out = tmp_path / "evil.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(good, arcname="b")
        link = tarfile.TarInfo("b/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tar.addfile(link)
    return out


def _truncated(tmp_path, good: Path) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(good, arcname="b")
    out = tmp_path / "cut.tar.gz"
    out.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return out


CASES = {
    "model file": (lambda t, b: _flip(b / "model.int8.onnx"), "does not match its sha256"),
    "ood file": (lambda t, b: _flip(b / "ood.npz"), "does not match its sha256"),
    "manifest": (lambda t, b: _flip_threshold(b), "not from a trusted key"),
    "re-hashed manifest": (lambda t, b: _rehash(b), "not from a trusted key"),
    "unknown key": (lambda t, b: sign(b, t / "stranger.key") and None, "not from a trusted key"),
    "unsigned": (lambda t, b: (b / "manifest.json.sig").unlink(), "not signed"),
    "downgrade": (lambda t, b: None, "not newer than the installed"),
    "truncated archive": (lambda t, b: _truncated(t, b), "not a complete, safe bundle archive"),
    "link out of the archive": (lambda t, b: _evil_archive(t, b), "not a complete, safe bundle"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_updates_are_refused_and_change_nothing(tmp_path, keys, installed, case):
    spoil, message = CASES[case]
    created = "2026-10-01T00:00:00+00:00" if case == "downgrade" else "2026-11-25T00:00:00+00:00"
    bundle = make_bundle(tmp_path, "new", created, tmp_path / "release.key")
    src = spoil(tmp_path, bundle) or bundle
    before = snapshot(installed)
    proc = install(installed, keys, src, ok=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert re.search(message, proc.stderr), proc.stderr
    assert snapshot(installed) == before
    assert not list(installed.glob(".incoming-*"))


def test_downgrade_when_asked_and_store_listing(tmp_path, keys, installed):
    older = make_bundle(tmp_path, "old", "2026-10-01T00:00:00+00:00", tmp_path / "release.key")
    install(installed, keys, older, "--allow-downgrade")
    store = BundleStore(installed, keys)
    assert store.current().created.isoformat().startswith("2026-10-01")
    assert [i.created.isoformat()[:10] for i in store.installed()] == ["2026-10-01", "2026-11-01"]


def test_verify_command(tmp_path, keys):
    b = make_bundle(tmp_path, "b", "2026-11-02T00:00:00+00:00", tmp_path / "release.key")
    ok = run_cli("device.cli", "bundle", "--keys", keys, "verify", b)
    assert "files ok, signed by release.pub" in ok.stdout
    _flip(b / "manifest.json.sig", 0)
    bad = run_cli("device.cli", "bundle", "--keys", keys, "verify", b, ok=False)
    assert bad.returncode == 2 and "not from a trusted key" in bad.stderr
