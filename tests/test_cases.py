"""Saved cases (issue 16): real SQLite and real files, power cuts by SIGKILL, full and read-only
disks, export to a folder, the `mpox-screen cases` commands."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from device import DeviceError
from device.cases.export import FOLDER, check_export, export
from device.cases.store import Case, CaseStore, digest
from tests.conftest import copy_subset, run_cli

ROOT = Path(__file__).resolve().parents[1]


def case(verdict="Mpox likely", when="2026-11-30T10:00:00.000+00:00", **kw) -> Case:
    base = dict(
        saved_at=when,
        verdict=verdict,
        status="ok",
        smoothed_prob=0.8,
        ood_score=0.4,
        quality="{}",
        bundle="b",
        bundle_version="1",
        bundle_sha256="0" * 64,
    )
    return Case(**(base | kw))


def test_save_list_verify_and_permissions(tmp_path):
    with CaseStore(tmp_path / "s") as store:
        n = store.save(case(), b"frame-bytes", b"view-bytes")
        store.set_reference(n, "PT-0042")
        got = store.get(n)
        assert got.reference == "PT-0042" and got.smoothed_prob == 0.8 and store.count() == 1
        assert store.verify() == []
        assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
        for p in store.images.iterdir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "s" / "cases.db").stat().st_mode) == 0o600
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        (store.images / got.view_file).write_bytes(b"edited")
        (store.images / got.frame_file).unlink()
        problems = store.verify()
    assert problems == [
        f"case {n}: {got.frame_file} is missing",
        f"case {n}: {got.view_file} does not match its checksum",
    ]
    proc = run_cli("device.cli", "cases", "--state-dir", tmp_path / "s", "verify", ok=False)
    assert proc.returncode == 1 and "is missing" in proc.stdout and "2 problems" in proc.stdout


SAVER = """
import sys
from device.cases.store import Case, CaseStore
store = CaseStore(sys.argv[1])
i = 0
while True:
    i += 1
    c = Case("2026-11-30T10:00:00", "Mpox likely", "ok", 0.5, 0.1, "{}", "b", "1", "0" * 64)
    store.save(c, b"F" * 20000 + str(i).encode(), b"V" * 30000 + str(i).encode())
    print(i, flush=True)
"""


def test_power_cuts_never_lose_or_tear_a_case(tmp_path):
    """SIGKILL at random moments across many saves: afterwards the database is whole, every
    committed case has both images with matching checksums, and no orphan image is ever listed
    as a case; committed cases never disappear."""
    root, rng = tmp_path / "s", random.Random(0)
    kills, before, orphans_seen = 0, 0, 0
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    while kills < 200:
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(root)], stdout=subprocess.PIPE, env=env
        )
        proc.stdout.readline() if rng.random() < 0.5 else None  # sometimes mid-run, sometimes early
        time.sleep(rng.uniform(0, 0.03))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        kills += 1
        with CaseStore(root) as store:
            assert store.verify() == []
            listed = {n for c in store.cases() for n in (c.frame_file, c.view_file)}
            orphans = store.orphans()
            assert not listed & {p.name for p in orphans}
            orphans_seen = len(orphans)  # they accumulate: removed by the daemon's next start
            assert store.count() >= before
            before = store.count()
    assert before > 200, before  # the kills landed across many saves, not before the first
    print(f"{kills} kills, {before} cases committed, {orphans_seen} orphan image files left")


def test_export_is_complete_repeatable_and_keeps_purged_cases(tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    with CaseStore(tmp_path / "s") as store:
        store.save(case(when="2026-11-01T09:00:00.000+00:00"), b"f1", b"v1")
        store.save(
            case("Mpox unlikely", smoothed_prob=0.1, when="2026-11-20T09:00:00"), b"f2", b"v2"
        )
        first = export(store, usb)
        again = export(store, usb)
        store.delete(store.cases(before="2026-11-25"))
        store.save(
            case("Cannot judge: not a skin-lesion photo", status="cannot_judge"), b"f3", b"v3"
        )
        third = export(store, usb)
        ids = [c.id for c in store.cases()]
    assert (first.cases, first.new_images) == (2, 4)
    assert (again.cases, again.new_images) == (2, 0)  # nothing duplicated
    assert (third.cases, third.new_images) == (3, 2)  # the purged case stays exported
    assert ids == [3]  # numbers of purged cases are never reused
    folder = usb / FOLDER
    rows = list(csv.DictReader((folder / "cases.csv").open()))
    assert list(rows[0])[:3] == ["kit", "saved_at", "verdict"]  # stable keys, any language
    assert [r["verdict"][:12] for r in rows] == ["Mpox likely", "Mpox unlikel", "Cannot judge"]
    assert check_export(folder) == [] and len((folder / "SHA256SUMS").read_text().split("\n")) == 7


@pytest.fixture
def tmpfs(tmp_path):
    """A real, small filesystem: a 256 KiB tmpfs (the test machines run as root)."""
    mounted = []

    def make(name: str, size_kb: int = 256, ro: bool = False) -> Path:
        path = tmp_path / name
        path.mkdir()
        opts = f"size={size_kb}k" + (",ro" if ro else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)])
        assert proc.returncode == 0, "tests need `mount -t tmpfs` (root)"
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)])


def test_export_to_a_full_stick_fails_cleanly(tmp_path, tmpfs):
    usb = tmpfs("usb", size_kb=256)
    with CaseStore(tmp_path / "s") as store:
        store.save(case(), b"a" * 50_000, b"b" * 50_000)
        export(store, usb)  # fits
        before = {p: p.read_bytes() for p in (usb / FOLDER).rglob("*") if p.is_file()}
        for i in range(3):
            store.save(case(when=f"2026-11-30T11:00:0{i}.000+00:00"), os.urandom(90_000), b"v")
        source = [(c.id, c.frame_sha256) for c in store.cases()]
        proc = run_cli(
            "device.cli", "cases", "--state-dir", tmp_path / "s", "export", "--to", usb, ok=False
        )
        assert proc.returncode == 2 and "No space left on device" in proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
        assert [(c.id, c.frame_sha256) for c in store.cases()] == source and store.verify() == []
    assert {p: p.read_bytes() for p in before} == before  # the previous export as it was
    assert next(csv.DictReader((usb / FOLDER / "cases.csv").open()))["id"] == "1"
    assert check_export(usb / FOLDER) == []


def test_export_while_the_daemon_saves(tmp_path):
    """Concurrent use: a second process saves while the export reads (WAL: no lock error)."""
    root = tmp_path / "s"
    CaseStore(root).close()
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(root)], stdout=subprocess.PIPE, env=env
    )
    try:
        saver.stdout.readline()
        usb = tmp_path / "usb"
        usb.mkdir()
        results = []
        for _ in range(5):
            with CaseStore(root, create=False) as store:
                results.append(export(store, usb).cases)
    finally:
        saver.kill()
        saver.wait()
        saver.stdout.close()
    assert results == sorted(results) and results[-1] >= 1
    assert check_export(usb / FOLDER) == []


def test_cases_commands(tmp_path):
    root = tmp_path / "s"
    with CaseStore(root) as store:
        store.save(case(when="2026-10-01T08:00:00.000+00:00"), b"f1", b"v1")
        store.save(case("Mpox unlikely", smoothed_prob=0.05), b"f2", b"v2")
    args = ("device.cli", "cases", "--state-dir", root)
    lines = run_cli(*args, "list", "--json").stdout.splitlines()
    assert [json.loads(x)["verdict"] for x in lines] == ["Mpox likely", "Mpox unlikely"]
    assert "ref PT-7" in (
        run_cli(*args, "ref", "2", "PT-7").stdout and run_cli(*args, "list").stdout
    )
    assert "PT-7" in run_cli(*args, "show", "2").stdout
    assert "deleted 1 cases" in run_cli(*args, "purge", "--before", "2026-11-01").stdout
    assert run_cli(*args, "verify").stdout.strip() == "1 cases: all whole"
    bad = run_cli(*args, "purge", "--before", "yesterday", ok=False)
    assert bad.returncode == 2 and "is not a date" in bad.stderr
    missing = run_cli("device.cli", "cases", "--state-dir", tmp_path / "none", "list", ok=False)
    assert missing.returncode == 2 and "no saved cases" in missing.stderr
    assert "no case 9" in run_cli(*args, "show", "9", ok=False).stderr


def run_daemon(tmp_path, monkeypatch, keys: dict[int, str] | None = None, hook=None, **kw):
    """The real daemon on demo:// frames with the null display; `keys`: frame number -> the key
    the display reports after showing it (what a window does when a key is pressed)."""
    from device.config import from_flags
    from device.live.daemon import Daemon

    base = dict(display="null", source="demo://", log_dir=str(tmp_path / "logs"), max_frames=6)
    base |= {"state_dir": str(tmp_path / "state")}
    daemon = Daemon(from_flags(**(base | kw)))
    notices: list[str] = []
    monkeypatch.setattr(daemon.renderer, "notice", lambda canvas, text: notices.append(text))
    shown = []

    def show(canvas):
        shown.append(canvas)
        if hook:
            hook(len(shown))
        return (keys or {}).get(len(shown))

    monkeypatch.setattr(daemon.display, "show", show)
    assert daemon.run() == 0
    return daemon, notices, shown


def test_space_saves_what_the_screen_shows(tmp_path, monkeypatch):
    """The demo's drawn skin reads "Cannot judge"; space saves that, frame and screen."""
    import cv2

    _, notices, shown = run_daemon(tmp_path, monkeypatch, keys={2: " "})
    with CaseStore(tmp_path / "state", create=False) as store:
        (c,) = store.cases()
        frame = cv2.imread(str(store.images / c.frame_file))
        view = cv2.imread(str(store.images / c.view_file))
    assert (
        c.status == "cannot_judge"
        and c.verdict.startswith("Cannot judge")
        and c.smoothed_prob is None
    )
    assert c.ood_score > 0 and json.loads(c.quality)["focus"] > 0
    assert frame.shape == (480, 640, 3) and view.shape == shown[0].shape
    assert c.bundle == "micrompoxnet-distilled-binary" and len(c.bundle_sha256) == 64
    # the decision as data: no verdict, so no label or positive; the frame's own P and the
    # threshold kept all the same
    assert c.label == "" and c.positive is None and 0 <= c.frame_prob <= 1 and c.threshold > 0
    assert c.kit and (c.ita is None or -90 <= c.ita <= 90)
    assert any(n.startswith("Saved case 1 - 1 cases") and "GB free" in n for n in notices)


@pytest.fixture(scope="module")
def photos(msid, tmp_path_factory) -> Path:
    return copy_subset(msid, tmp_path_factory.mktemp("photos"), {"mpox": 2, "normal": 2})


def test_button_and_timer_save_cases(tmp_path, monkeypatch, photos):
    """A push button on GPIO17 (gpiozero's mock pin factory) and `capture_every`."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    Device.pin_factory = MockFactory()
    try:

        def press(n):
            if n == 2:
                pin = Device.pin_factory.pin(17)
                pin.drive_low()
                pin.drive_high()

        run_daemon(tmp_path, monkeypatch, hook=press, button_pin=17, source=f"dir://{photos}")
    finally:
        Device.pin_factory.close()
        Device.pin_factory = None
    with CaseStore(tmp_path / "state", create=False) as store:
        assert [c.status for c in store.cases()] == ["ok"]
        c = store.cases()[0]
    assert 0 <= c.smoothed_prob <= 1 and 0 <= c.frame_prob <= 1
    assert c.label in ("mpox", "other") and c.positive == (c.label == "mpox")
    assert c.positive == (c.smoothed_prob >= c.threshold)  # the record says what decided
    assert c.ita is not None and c.kit
    run_daemon(
        tmp_path,
        monkeypatch,
        capture_every=0.02,
        max_frames=40,
        source=f"dir://{photos}",
        loop=True,
    )
    with CaseStore(tmp_path / "state", create=False) as store:
        assert store.count() >= 3 and store.verify() == []


def test_full_or_read_only_state_never_stops_screening(tmp_path, monkeypatch, tmpfs):
    small = tmpfs("small", size_kb=256)
    _, notices, shown = run_daemon(
        tmp_path, monkeypatch, keys={2: " "}, state_dir=str(small / "s"), min_free_mb=1
    )
    assert (
        len(shown) == 6 and "Disk nearly full: case NOT saved - export and purge cases" in notices
    )
    ro = tmpfs("ro", ro=True)
    _, notices, shown = run_daemon(tmp_path, monkeypatch, keys={2: " "}, state_dir=str(ro / "s"))
    assert len(shown) == 6
    assert (
        notices[0] == "Cases cannot be saved" and "Cases cannot be saved: case NOT saved" in notices
    )


def test_export_reads_back_what_it_wrote(tmp_path, monkeypatch):
    """A stick that stores other bytes than it was given (a failing or fake-capacity one): the
    export reads every file back against SHA256SUMS and says so instead of reporting success."""
    import device.cases.export as case_export

    real = case_export.write_atomic

    def lying(path, data, mode=0o600):
        real(path, data[:-1] + b"?" if path.suffix == ".jpg" else data, mode)

    monkeypatch.setattr(case_export, "write_atomic", lying)
    usb = tmp_path / "usb"
    usb.mkdir()
    with CaseStore(tmp_path / "s") as store:
        store.save(case(), b"frame!", b"view!")
        with pytest.raises(DeviceError, match="2 files read back wrong"):
            export(store, usb)
        assert store.verify() == []  # the kit's copy is untouched


OLD_SCHEMA = """
CREATE TABLE cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT, saved_at TEXT NOT NULL, verdict TEXT NOT NULL,
    status TEXT NOT NULL, prob REAL, ood_score REAL, quality TEXT NOT NULL, bundle TEXT NOT NULL,
    bundle_version TEXT NOT NULL, bundle_sha256 TEXT NOT NULL, reference TEXT NOT NULL DEFAULT '',
    frame_file TEXT NOT NULL, frame_sha256 TEXT NOT NULL, view_file TEXT NOT NULL,
    view_sha256 TEXT NOT NULL
);
CREATE TABLE pending (file TEXT PRIMARY KEY);
"""  # the table stores written before 2026-12-04 have


def test_an_older_store_is_read_as_is_and_migrated_when_written(tmp_path):
    """A kit updated in the field keeps every saved case: read-only commands read the old table
    as it is (its `prob` is the smoothed P), and the first write adds the new columns in one
    transaction, keeping every value."""
    import sqlite3

    root = tmp_path / "state"
    (root / "images").mkdir(parents=True)
    for name in ("f.jpg", "v.jpg"):
        (root / "images" / name).write_bytes(name.encode())
    db = sqlite3.connect(root / "cases.db")
    db.executescript(OLD_SCHEMA)
    db.execute(
        "INSERT INTO cases (saved_at, verdict, status, prob, ood_score, quality, bundle, "
        "bundle_version, bundle_sha256, reference, frame_file, frame_sha256, view_file, "
        "view_sha256) VALUES ('2026-11-30T10:00:00.000+00:00', 'Mpox likely', 'ok', 0.7, 0.3, "
        "'{}', 'b', '1', ?, 'PT-1', 'f.jpg', ?, 'v.jpg', ?)",
        ("0" * 64, digest(b"f.jpg"), digest(b"v.jpg")),
    )
    db.commit()
    db.close()
    with CaseStore(root, create=False, write=False) as store:
        (old,) = store.cases()
    assert old.smoothed_prob == 0.7 and old.reference == "PT-1" and old.positive is None
    with CaseStore(root) as store:  # opened for writing: migrated
        store.save(case(positive=True, label="mpox", frame_prob=0.9, threshold=0.2), b"f", b"v")
        first, new = store.cases()
        assert store.verify() == []
    assert first == old and new.positive is True and new.threshold == 0.2
    columns = [r[1] for r in sqlite3.connect(root / "cases.db").execute("PRAGMA table_info(cases)")]
    assert "prob" not in columns and {"smoothed_prob", "label", "positive", "ita", "kit"} <= set(
        columns
    )
