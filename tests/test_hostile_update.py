"""The signed-update path against hostile bundles and stores (issue 30): names that walk out of
the store, a manifest swapped during the install, times with offsets, an edited or enormous
card, archive and signature bombs, leftovers of a killed install, stray folders, key files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device import DeviceError
from device.updates.signing import sign
from device.updates.store import BundleStore
from tests.conftest import edit_manifest, one_line_error, run_cli
from tests.test_bundle_update import install, installed, keys, make_bundle, snapshot  # noqa: F401

RELEASE = "release.key"
MEM = 1024  # MB: an install reads a few MB of model files


def bundle_cli(store, keys_dir, *args):
    return run_cli(
        "device.cli", "bundle", "--store", store, "--keys", keys_dir, *args, ok=False, mem_mb=MEM
    )


def signed(tmp_path, name, created="2026-11-20T00:00:00+00:00", change=None) -> Path:
    b = make_bundle(tmp_path, name, created, None)
    if change:
        edit_manifest(b, change)
    sign(b, tmp_path / RELEASE)
    return b


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.one_of(
        st.sampled_from(["../../escaped", "../x", "a/b", "/tmp/abs", "x" * 300, ".hidden", ""]),
        st.text(max_size=20).map(lambda s: "../" + s),
    )
)
def test_a_model_name_never_leaves_the_store(tmp_path_factory, name):
    tmp = tmp_path_factory.mktemp("name")
    trusted = tmp / "keys"
    trusted.mkdir()
    run_cli("device.cli", "bundle", "keygen", tmp / RELEASE)
    (tmp / "release.pub").rename(trusted / "release.pub")
    store = tmp / "deep" / "store"
    src = signed(tmp, "evil", change=lambda m: m["model"].update(name=name))
    err = one_line_error(bundle_cli(store, trusted, "install", src, "--no-restart"))
    assert "model name" in err
    assert sorted(p.name for p in (tmp / "deep").iterdir()) == ["store"]
    assert not [p for p in store.iterdir() if not p.name.startswith(".")]


def test_a_manifest_swapped_during_the_install_is_never_installed(tmp_path, keys):  # noqa: F811
    """A second process rewrites the source's manifest.json (threshold 0.99, signature kept)
    while installs run: every install either refuses or installs the signed bytes."""
    store = BundleStore(tmp_path / "store", keys)
    src = signed(tmp_path, "src")
    good = (src / "manifest.json").read_bytes()
    m = json.loads(good)
    evil = json.dumps(m | {"threshold": 0.99}).encode()
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            for data in (evil, good):
                tmp = src / "manifest.json.swap"
                tmp.write_bytes(data)
                os.replace(tmp, src / "manifest.json")

    flipper = threading.Thread(target=swap)
    flipper.start()
    outcomes = {"installed": 0, "refused": 0}
    try:
        for _ in range(40):
            try:
                dest, signer = store.install(src, allow_downgrade=True)
            except DeviceError:
                outcomes["refused"] += 1
                continue
            installed_m = json.loads((dest / "manifest.json").read_text())
            assert installed_m["threshold"] == m["threshold"] and signer == "release.pub"
            outcomes["installed"] += 1
            for p in dest.iterdir():
                p.unlink()
            dest.rmdir()
    finally:
        stop.set()
        flipper.join()
    assert outcomes["installed"] > 0, outcomes


@pytest.mark.parametrize(
    "created, newer",
    [
        ("2026-11-01T12:00:00+14:00", False),  # 2026-10-31T22:00Z: older, though "larger" text
        ("2026-11-01T00:00:00-08:00", True),  # 08:00Z: newer, though "smaller" text
        ("2026-11-01T00:00:00+00:00", False),  # the same moment
    ],
)
def test_created_is_compared_as_a_time(tmp_path, keys, installed, created, newer):  # noqa: F811
    src = signed(tmp_path, "v", created)
    proc = bundle_cli(installed, keys, "install", src, "--no-restart")
    if newer:
        assert proc.returncode == 0, proc.stderr
    else:
        assert "not newer than the installed" in one_line_error(proc)


@pytest.mark.parametrize("created", [12345, None, "yesterday", "2026-11-01T00:00:00"])
def test_a_bad_created_is_one_line(tmp_path, keys, installed, created):  # noqa: F811
    src = signed(tmp_path, "v", change=lambda m: m.update(created=created))
    assert "'created'" in one_line_error(bundle_cli(installed, keys, "install", src))


def test_the_card_is_signed_too(tmp_path, keys, installed):  # noqa: F811
    before = snapshot(installed)
    src = signed(tmp_path, "v2")
    with (src / "card.md").open("a") as f:
        f.write("\nThis kit gives a diagnosis.\n")
    assert "card.md" in one_line_error(bundle_cli(installed, keys, "install", src))
    os.truncate(src / "card.md", 2 << 30)  # a 2 GB sparse card: refused, never copied
    assert "card.md" in one_line_error(bundle_cli(installed, keys, "install", src))
    assert snapshot(installed) == before


def _tar_with_header_only(path: Path, size: int) -> None:
    """A .tar.gz whose one member claims `size` bytes (the data is never there)."""
    info = tarfile.TarInfo("b/model.int8.onnx")
    info.size = size
    import gzip

    with gzip.open(path, "wb") as f:
        f.write(info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024)


def test_archive_bombs_are_refused_before_they_unpack(tmp_path, keys, installed):  # noqa: F811
    bomb = tmp_path / "bomb.tar.gz"
    _tar_with_header_only(bomb, 2 << 30)
    assert "unpacked" in one_line_error(bundle_cli(installed, keys, "install", bomb))
    many = tmp_path / "many.tar.gz"
    with tarfile.open(many, "w:gz") as tar:
        for i in range(200):
            info = tarfile.TarInfo(f"b/f{i}")
            tar.addfile(info, io.BytesIO(b""))
    assert "more than 64 files" in one_line_error(bundle_cli(installed, keys, "install", many))
    assert not list(installed.glob(".incoming-*"))


def test_leftovers_of_a_killed_install_are_removed(tmp_path, keys, installed):  # noqa: F811
    (installed / ".incoming-abc123" / ".stage").mkdir(parents=True)
    (installed / ".incoming-abc123" / ".stage" / "model.int8.onnx").write_bytes(b"x" * 1000)
    bundle_cli(installed, keys, "install", signed(tmp_path, "v2"), "--no-restart")
    assert not list(installed.glob(".incoming-*"))


def test_a_signature_bomb_is_one_line(tmp_path, keys):  # noqa: F811
    src = signed(tmp_path, "v")
    os.truncate(src / "manifest.json.sig", 3 << 30)
    proc = bundle_cli(tmp_path / "store", keys, "verify", src)
    assert "not an Ed25519 signature" in one_line_error(proc)


def test_a_stray_folder_in_the_store(tmp_path, keys, installed):  # noqa: F811
    (installed / "lost+found").mkdir()
    (installed / "notes").mkdir()
    (installed / "notes" / "manifest.json").write_text("{")
    listing = bundle_cli(installed, keys, "list")
    assert listing.returncode == 0 and listing.stdout.count("signed by") == 1, listing.stderr
    assert (
        bundle_cli(installed, keys, "install", signed(tmp_path, "v2"), "--no-restart").returncode
        == 0
    )


def test_keygen_never_overwrites_a_key(tmp_path, monkeypatch):
    keygen = ("device.cli", "bundle", "keygen")
    assert "name the private key" in one_line_error(run_cli(*keygen, tmp_path / "k.pub", ok=False))
    (tmp_path / "other.pub").write_text("a trusted key")
    err = one_line_error(run_cli(*keygen, tmp_path / "other", ok=False))
    assert "exists" in err and (tmp_path / "other.pub").read_text() == "a trusted key"
    assert not (tmp_path / "other").exists()  # no half pair left
    assert "No such file" in one_line_error(run_cli(*keygen, tmp_path / "no" / "k", ok=False))
    proc = subprocess.run(
        [os.sys.executable, "-m", "device.cli", "bundle", "keygen"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mpox-screen-release.key").is_file()
    assert (tmp_path / "mpox-screen-release.pub").is_file()


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_a_store_that_cannot_be_written_is_one_line(tmp_path, keys, kind):  # noqa: F811
    store = tmp_path / "store"
    if kind == "file":
        store.write_text("not a folder")
    else:
        store.mkdir()
        assert (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(store)]
            ).returncode
            == 0
        )
    try:
        for args in (["install", signed(tmp_path, "v"), "--no-restart"], ["list"], ["rollback"]):
            proc = bundle_cli(store, keys, *args)
            if args == ["list"] and kind == "read-only":
                assert proc.returncode == 0
            else:
                one_line_error(proc)
    finally:
        if kind == "read-only":
            subprocess.run(["umount", "-l", str(store)])
