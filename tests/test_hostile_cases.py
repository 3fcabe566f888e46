"""The case store against hostile input and faults (issue 30): a replaced or emptied database,
two daemons on one state folder, rows naming files outside the store, a damaged page, a card gone
read-only or full, spreadsheet formulas and control characters, a foreign cases.csv on the stick.
Real SQLite, real files, real tmpfs mounts; every CLI run memory-capped."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device import DeviceError
from device.cases.export import FOLDER, cell, export
from device.cases.store import DB, CaseStore
from device.config import from_flags
from device.live.instance_lock import InstanceBusy
from tests.conftest import one_line_error, run_cli
from tests.test_cases import case, run_daemon, tmpfs  # noqa: F401 (tmpfs: a fixture)

MEM = 1024  # MB of address space for a `cases` command: it reads rows and copies files


def cases_cli(root, *args, ok=False):
    return run_cli("device.cli", "cases", "--state-dir", root, *args, ok=ok, mem_mb=MEM)


def saved(root, n=3):
    with CaseStore(root) as store:
        for i in range(n):
            store.save(case(when=f"2026-11-30T10:00:0{i}.000+00:00"), b"f%d" % i, b"v%d" % i)
    return sorted(p.name for p in (root / "images").iterdir())


@pytest.mark.parametrize("how", ["deleted", "emptied", "replaced"])
def test_a_lost_database_never_costs_the_images(tmp_path, monkeypatch, how):
    """The daemon's start-up sweep removes only what the database says was in flight: with the
    database gone, emptied or another one in its place, every image stays and verify says so."""
    state = tmp_path / "state"
    images = saved(state)
    db = state / DB
    for extra in ("-wal", "-shm"):
        (state / (DB + extra)).unlink(missing_ok=True)
    if how == "deleted":
        db.unlink()
    elif how == "emptied":
        db.write_bytes(b"")
    else:
        db.unlink()
        saved(tmp_path / "other", 1)
        (tmp_path / "other" / DB).rename(db)
    run_daemon(tmp_path, monkeypatch, max_frames=2)
    assert set(images) <= {p.name for p in (state / "images").iterdir()}
    proc = cases_cli(state, "verify")
    assert proc.returncode == 1, proc.stderr
    assert "image files that no case names" in proc.stdout and "kept" in proc.stdout


def test_a_save_cut_short_is_still_swept(tmp_path):
    """What the database records as in flight (names written, row never committed) is removed
    at the next start, and only that."""
    state = tmp_path / "s"
    keep = saved(state, 1)
    with CaseStore(state) as store:
        store.db.execute("INSERT INTO pending (file) VALUES ('cut-frame.jpg')")
    (state / "images" / "cut-frame.jpg").write_bytes(b"half")
    (state / "images" / ".cut-frame.jpg.tmp").write_bytes(b"half")
    with CaseStore(state) as store:
        assert store.remove_orphans() == 2
        assert sorted(p.name for p in store.images.iterdir()) == keep and store.verify() == []


def test_two_daemons_on_one_state_folder(tmp_path):
    """Different log folders, one state folder: the second is refused before it sweeps."""
    from device.live.daemon import Daemon

    base = dict(display="null", source="demo://", state_dir=str(tmp_path / "state"))
    first = Daemon(from_flags(**base, log_dir=str(tmp_path / "logs1")))
    try:
        with pytest.raises(InstanceBusy, match="saves cases into"):
            Daemon(from_flags(**base, log_dir=str(tmp_path / "logs2")))
    finally:
        first.cases.close()
        first.display.close()
        first.lock.release()
    Daemon(from_flags(**base, log_dir=str(tmp_path / "logs2"))).lock.release()  # free again


HOSTILE = st.one_of(
    st.sampled_from(["../../victim", "../victim", "/tmp/victim", "a/b", ".hidden", "", "x" * 300]),
    st.tuples(st.sampled_from(["../", "/", ".", "a/../../", "~/"]), st.text(max_size=30)).map(
        "".join
    ),
    st.text(alphabet=st.characters(categories=["Cc", "Zs", "So"]), min_size=1, max_size=20),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=HOSTILE)
def test_a_row_naming_a_file_elsewhere_is_never_copied_or_deleted(tmp_path_factory, name):
    root = tmp_path_factory.mktemp("hostile")
    state, usb, victim = root / "state", root / "usb", root / "victim"
    usb.mkdir()
    victim.write_bytes(b"a system file")
    saved(state, 2)
    with CaseStore(state) as store:
        store.db.execute("UPDATE cases SET frame_file=?, view_file=? WHERE id=1", (name, name))
        assert any(p.startswith("case 1: image name in the case store") for p in store.verify())
        r = export(store, usb)
        assert r.cases == 1 and len(r.skipped) == 1 and "case 1 not exported" in r.skipped[0]
        exported = {p.name for p in (usb / FOLDER / "images").iterdir()}
        assert "victim" not in exported and len(exported) == 2
        store.delete(store.cases())
    assert victim.read_bytes() == b"a system file"


def test_export_and_purge_on_the_command_line_with_a_tampered_row(tmp_path):
    state, usb, victim = tmp_path / "state", tmp_path / "usb", tmp_path / "victim"
    usb.mkdir()
    victim.write_bytes(b"keep me")
    saved(state, 2)
    with CaseStore(state) as store:
        store.db.execute("UPDATE cases SET frame_file='../../victim' WHERE id=1")
    proc = cases_cli(state, "export", "--to", usb)
    assert proc.returncode == 1 and "case 1 not exported" in proc.stderr
    assert "exported 1 cases" in proc.stdout and "Traceback" not in proc.stderr
    assert "not a plain file name" in one_line_error(cases_cli(state, "show", "1"))
    assert cases_cli(state, "purge", "--before", "2027-01-01").returncode == 0
    assert victim.read_bytes() == b"keep me"


def damage(db_path, page: int = 10) -> None:
    """Overwrite one page in the middle of the file (a card's torn write)."""
    with open(db_path, "r+b") as f:
        f.seek(4096 * page)
        f.write(b"\xa5" * 4096)


def damaged_store(tmp_path):
    state = tmp_path / "state"
    with CaseStore(state) as store:
        for i in range(200):  # several pages of rows
            store.save(
                case(reference="R" * 200, when=f"2026-11-30T10:{i // 60:02d}:{i % 60:02d}"),
                b"f",
                b"v",
            )
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damage(state / DB)
    return state


def test_a_damaged_page_is_one_line_and_the_kit_keeps_screening(tmp_path, monkeypatch):
    state = damaged_store(tmp_path)
    for args in (
        ["list"],
        ["show", "150"],
        ["export", "--to", tmp_path],
        ["purge", "--before", "2027-01-01"],
        ["ref", "150", "x"],
    ):
        proc = cases_cli(state, *args)  # a row on an intact page may still be read or set
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        if proc.returncode or args == ["list"]:  # list reads every page
            assert "damaged" in one_line_error(proc), args
    verify = cases_cli(state, "verify")
    assert verify.returncode in (1, 2) and "Traceback" not in verify.stderr
    _, notices, shown = run_daemon(tmp_path, monkeypatch, keys={2: " "}, state_dir=str(state))
    assert len(shown) == 6 and any("NOT saved" in n or "cannot be saved" in n for n in notices)


def test_a_card_gone_read_only_can_still_be_read_and_exported(tmp_path, tmpfs):  # noqa: F811
    card = tmpfs("card", size_kb=2048)
    saved(card / "s", 3)
    assert subprocess.run(["mount", "-o", "remount,ro", str(card)]).returncode == 0
    usb = tmp_path / "usb"
    usb.mkdir()
    assert (
        len(run_cli("device.cli", "cases", "--state-dir", card / "s", "list").stdout.splitlines())
        == 3
    )
    assert cases_cli(card / "s", "verify", ok=True).stdout.strip() == "3 cases: all whole"
    assert "exported 3 cases" in cases_cli(card / "s", "export", "--to", usb, ok=True).stdout
    err = one_line_error(cases_cli(card / "s", "ref", "1", "PT-1"))
    assert "readonly" in err or "read-only" in err


def test_a_full_disk_is_one_line_for_ref_and_purge(tmp_path, tmpfs):  # noqa: F811
    card = tmpfs("card", size_kb=512)
    saved(card / "s", 3)
    fd = os.open(card / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill every byte left
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    for args in (["ref", "1", "R" * 200], ["purge", "--before", "2027-01-01"]):
        proc = cases_cli(card / "s", *args)
        if proc.returncode:
            assert "full" in one_line_error(proc), args
    (card / "filler").unlink()
    assert cases_cli(card / "s", "verify").returncode in (0, 1)


@given(st.text(max_size=30))
def test_a_csv_cell_never_starts_a_formula(text):
    out = cell(text)
    if isinstance(out, str) and out.startswith(("=", "+", "-", "@", "\t", "\r")):
        float(out)  # only a number may start so
    assert out in (text, "'" + text)


def test_references_formulas_and_control_characters(tmp_path):
    state, usb = tmp_path / "state", tmp_path / "usb"
    usb.mkdir()
    saved(state, 2)
    assert cases_cli(state, "ref", "1", '=HYPERLINK("http://x","y")', ok=True).returncode == 0
    assert "control characters" in one_line_error(cases_cli(state, "ref", "2", "a\nb"))
    with CaseStore(state) as store:  # written by older code or by hand
        store.db.execute("UPDATE cases SET reference='a\nb' WHERE id=2")
    lines = cases_cli(state, "list", ok=True).stdout.splitlines()
    assert len(lines) == 2 and lines[1].endswith("ref a\\nb")
    cases_cli(state, "export", "--to", usb, ok=True)
    text = (usb / FOLDER / "cases.csv").read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


@pytest.mark.parametrize(
    "content",
    [
        b"Kit,saved_at,frame_file\nk,"
        + b"x" * (200 << 10)
        + b",a.jpg\n",  # a field past csv's limit
        b"\xff\xfe\x00garbage\n",  # not UTF-8
        b"kit,frame_file,view_file\nk,a.jpg,b.jpg\n",  # no saved_at
        b"saved_at,frame_file,frame_sha256,view_file,view_sha256\nx,../../etc/passwd,0,v,0\n",
    ],
)
def test_export_onto_a_foreign_cases_csv_is_refused(tmp_path, content):
    state, usb = tmp_path / "state", tmp_path / "usb"
    saved(state, 1)
    (usb / FOLDER).mkdir(parents=True)
    (usb / FOLDER / "cases.csv").write_bytes(content)
    err = one_line_error(cases_cli(state, "export", "--to", usb))
    assert "not a cases.csv this kit can read" in err
    assert (usb / FOLDER / "cases.csv").read_bytes() == content  # refused, never overwritten


@pytest.mark.parametrize("arg", ["99999999999999999999999", "-1", "1e3", "١"])
def test_case_numbers_out_of_range(tmp_path, arg):
    saved(tmp_path / "s", 1)
    assert "is not a case number" in one_line_error(cases_cli(tmp_path / "s", "show", arg))


def test_store_errors_are_device_errors(tmp_path):
    state = damaged_store(tmp_path)
    with pytest.raises(DeviceError, match="damaged"), CaseStore(state, write=False) as store:
        store.cases()
