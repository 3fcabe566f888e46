"""Saved cases: what the kit saw and said, kept through power cuts until exported or purged.

One SQLite database in WAL mode (`cases.db`) and the images beside it. A save first records
the names of the images it is about to write (`pending`), writes each atomically (temporary
file, fsync, rename, fsync of the folder), then commits the row naming them and clears `pending`
in one transaction: a power cut leaves either a whole case or none, and the kit's next start
removes only files the database says were in flight. An image the database does not account for
(a replaced, emptied or damaged database) is never removed: `verify` reports it. Files are 0600,
the folder 0700: the photos are patients' skin. Nothing leaves the kit except by `export`.
Image names from the database are plain names inside `images/` (`device.core.names`): a tampered row
cannot make `export` copy or `purge` delete anything elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from device import DeviceError
from device.core.names import inside

# Columns stores written since 2026-12-04 have, added to an older store when it is first opened
# for writing (`_migrate`), and declared once: a new store's table ends with them
ADDED = {
    "label": "TEXT NOT NULL DEFAULT ''",
    "positive": "INTEGER",  # 1 / 0 with a verdict; NULL without one
    "frame_prob": "REAL",  # P(positive class) of the saved frame alone
    "threshold": "REAL",
    "ita": "REAL",  # skin tone of the saved frame's square (device.core.skin_tone), degrees
    "kit": "TEXT NOT NULL DEFAULT ''",
    "result": "TEXT NOT NULL DEFAULT ''",  # the lab's: positive | negative | inconclusive
    "result_test": "TEXT NOT NULL DEFAULT ''",  # pcr | other
    "result_date": "TEXT NOT NULL DEFAULT ''",
    "diagnosis": "TEXT NOT NULL DEFAULT ''",  # the clinician's final diagnosis
    "consent": "INTEGER NOT NULL DEFAULT 0",  # 1: the patient agreed to training use
}
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a case number stays one case
    saved_at TEXT NOT NULL,
    verdict TEXT NOT NULL,  -- the screen's words: a display copy (the data is status, label ...)
    status TEXT NOT NULL,
    smoothed_prob REAL,  -- P(positive class) shown: the mean over the smoothing window
    ood_score REAL,
    quality TEXT NOT NULL,
    bundle TEXT NOT NULL,
    bundle_version TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    frame_file TEXT NOT NULL,
    frame_sha256 TEXT NOT NULL,
    view_file TEXT NOT NULL,
    view_sha256 TEXT NOT NULL,
    {", ".join(f"{name} {decl}" for name, decl in ADDED.items())}
);
CREATE TABLE IF NOT EXISTS pending (file TEXT PRIMARY KEY)  -- images of saves or deletes in flight
"""
DB = "cases.db"
IMAGES = "images"
RENAMED = {"prob": "smoothed_prob"}  # old name -> name


@dataclass(frozen=True)
class Case:
    saved_at: str  # ISO 8601, UTC
    verdict: str  # the screen's words, a display copy ("Mpox likely", "Hold steady", ...)
    status: str  # ok | poor_quality | cannot_judge
    smoothed_prob: float | None  # P(positive class) shown: the smoothing window's mean
    ood_score: float | None
    quality: str  # JSON of the quality measures
    bundle: str
    bundle_version: str
    bundle_sha256: str  # of the model file that ran
    reference: str = ""  # patient reference, typed or scanned later
    id: int | None = None
    frame_file: str = ""
    frame_sha256: str = ""
    view_file: str = ""
    view_sha256: str = ""
    label: str = ""  # the decided class; "" without a verdict
    positive: bool | None = None  # None without a verdict
    frame_prob: float | None = None  # P(positive class) of the saved frame alone
    threshold: float | None = None  # the bundle's, that decided
    ita: float | None = None  # skin tone of the saved frame (device.core.skin_tone), degrees
    kit: str = ""  # the kit that saved it (host name)
    result: str = ""  # the lab's result, when it came back (device.cases.results)
    result_test: str = ""
    result_date: str = ""
    diagnosis: str = ""
    consent: bool = False  # to the photo's use for training (`cases consent N`)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Case:
        """A row of any store version (an old one opened read-only is not migrated)."""
        d = {RENAMED.get(k, k): v for k, v in dict(row).items()}
        for key in ("positive", "consent"):
            if d.get(key) is not None:
                d[key] = bool(d[key])
        return cls(**d)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Whole or absent after a power cut: temporary file, fsync, rename, fsync of the folder."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _db(method):
    """SQLite's errors as one line: a damaged page, a full disk or a read-only card is a state
    of the store the user can act on, never a traceback (and never stops the daemon)."""

    @functools.wraps(method)
    def guarded(self, *args, **kw):
        try:
            return method(self, *args, **kw)
        except sqlite3.DatabaseError as e:
            raise DeviceError(store_error(self.root, e)) from None

    return guarded


def store_error(root: Path, e: sqlite3.Error | OSError) -> str:
    why = str(e)
    if root.is_dir() and not os.access(root, os.W_OK):
        return f"case store {root} is read-only ({why}): list, show, verify and export still work"
    if "malformed" in why or "not a database" in why:
        return (
            f"case store {root}: the database is damaged ({why}); its images are kept: "
            "copy the folder off the kit before any repair"
        )
    return f"case store {root}: {why}"


def _migrate(db: sqlite3.Connection) -> None:
    """An older store's table to this version's, in one transaction: renamed and added columns
    (rows keep every value; the added ones are empty for cases saved before)."""
    have = {r[1] for r in db.execute("PRAGMA table_info(cases)")}
    steps = [f"ALTER TABLE cases RENAME COLUMN {old} TO {new}"
             for old, new in RENAMED.items() if old in have and new not in have]  # fmt: skip
    steps += [
        f"ALTER TABLE cases ADD COLUMN {n} {decl}" for n, decl in ADDED.items() if n not in have
    ]
    if not steps:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for step in steps:
            db.execute(step)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class CaseStore:
    """`write=False` opens the database read-only (list, show, verify, export): those work on a
    card that went read-only, so the cases can still be rescued."""

    def __init__(self, root: Path, create: bool = True, write: bool = True):
        self.root = Path(root)
        self.images = self.root / IMAGES
        if not create and not (self.root / DB).is_file():
            raise DeviceError(f"no saved cases in {self.root} (no {DB})")
        try:
            self.db = self._open_write() if write else self._open_read()
        except (OSError, sqlite3.Error) as e:
            raise DeviceError(store_error(self.root, e)) from None

    def _open_write(self) -> sqlite3.Connection:
        for d in (self.root, self.images):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = sqlite3.connect(self.root / DB, timeout=10.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        _migrate(db)
        os.chmod(self.root / DB, 0o600)
        return db

    def _open_read(self) -> sqlite3.Connection:
        """mode=ro first; on a read-only folder without the WAL index that fails, and the file
        is then read as immutable (nothing can be writing to a read-only card)."""
        uri = f"file:{quote(str((self.root / DB).resolve()))}"
        for mode in ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=10.0)
                db.row_factory = sqlite3.Row
                db.execute("SELECT COUNT(*) FROM cases").fetchone()
                return db
            except sqlite3.OperationalError as e:
                failed = e
        raise failed

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def image(self, name: str) -> Path:
        """The image file a row names; a DeviceError if the name is not a plain one."""
        return inside(self.images, name, "image name in the case store")

    # ---- saving --------------------------------------------------------------------------
    @_db
    def save(self, case: Case, frame_jpeg: bytes, view_jpeg: bytes) -> int:
        """Names recorded as pending, images written (atomically), then the row that names them
        and the pending names cleared, in one transaction."""
        stem = f"{case.saved_at.replace(':', '').replace('-', '')}-{os.urandom(4).hex()}"
        files = {
            "frame": (f"{stem}-frame.jpg", frame_jpeg),
            "view": (f"{stem}-view.jpg", view_jpeg),
        }
        names = [(name,) for name, _ in files.values()]
        self.db.executemany("INSERT OR IGNORE INTO pending (file) VALUES (?)", names)
        for name, data in files.values():
            write_atomic(self.image(name), data)
        row = case.as_dict() | {"id": None}
        for key, (name, data) in files.items():
            row |= {f"{key}_file": name, f"{key}_sha256": digest(data)}
        cols = [k for k in row if k != "id"]
        with self._transaction():
            cur = self.db.execute(
                f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [row[k] for k in cols],
            )
            self.db.executemany("DELETE FROM pending WHERE file=?", names)
        return int(cur.lastrowid)

    @_db
    def set_reference(self, case_id: int, reference: str) -> None:
        if self.db.execute(
            "UPDATE cases SET reference=? WHERE id=?", (reference, case_id)
        ).rowcount:
            return
        raise DeviceError(f"no case {case_id}")

    @_db
    def ids_for(self, case_id: int | None, reference: str = "") -> list[int]:
        """The case with that number, or every case with that patient reference."""
        if case_id is not None:
            sql, args = "SELECT id FROM cases WHERE id=?", (case_id,)
        else:
            sql, args = "SELECT id FROM cases WHERE reference=? ORDER BY id", (reference,)
        return [r[0] for r in self.db.execute(sql, args)]

    @_db
    def set_consent(self, case_id: int, given: bool) -> None:
        if not self.db.execute(
            "UPDATE cases SET consent=? WHERE id=?", (int(given), case_id)
        ).rowcount:
            raise DeviceError(f"no case {case_id}")

    @_db
    def set_results(self, values: dict[int, tuple[str, str, str, str]]) -> int:
        """(result, test, date, diagnosis) per case, in one transaction; returns how many
        cases changed (the others had those values already)."""
        changed = 0
        with self._transaction():
            for case_id, v in values.items():
                changed += self.db.execute(
                    "UPDATE cases SET result=?, result_test=?, result_date=?, diagnosis=? "
                    "WHERE id=? AND (result, result_test, result_date, diagnosis) IS NOT "
                    "(?, ?, ?, ?)",
                    (*v, case_id, *v),
                ).rowcount
        return changed

    # ---- reading -------------------------------------------------------------------------
    @_db
    def cases(self, before: str | None = None) -> list[Case]:
        sql, args = "SELECT * FROM cases", ()
        if before:
            sql, args = sql + " WHERE saved_at < ?", (before,)
        return [Case.from_row(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    @_db
    def get(self, case_id: int) -> Case:
        row = self.db.execute("SELECT * FROM cases WHERE id=?", (case_id,)).fetchone()
        if row is None:
            raise DeviceError(f"no case {case_id}")
        return Case.from_row(row)

    @_db
    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    # ---- checking and cleaning -----------------------------------------------------------
    @_db
    def verify(self) -> list[str]:
        """Every problem, one line each: an empty list means the store is whole."""
        problems = [
            f"database: {r[0]}" for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"
        ]
        for case in self.cases():
            for name, want in (
                (case.frame_file, case.frame_sha256),
                (case.view_file, case.view_sha256),
            ):
                try:
                    path = self.image(name)
                except DeviceError as e:
                    problems.append(f"case {case.id}: {e}")
                    continue
                if not path.is_file():
                    problems.append(f"case {case.id}: {name} is missing")
                elif digest(path.read_bytes()) != want:
                    problems.append(f"case {case.id}: {name} does not match its checksum")
        if lost := self.unaccounted():
            problems.append(
                f"{len(lost)} image files that no case names (the database was replaced, "
                f"emptied or damaged?), e.g. {lost[0].name}: kept; copy them off the kit"
            )
        return problems

    def _pending(self) -> set[str]:
        has = self.db.execute("SELECT 1 FROM sqlite_master WHERE name='pending'").fetchone()
        return {r[0] for r in self.db.execute("SELECT file FROM pending")} if has else set()

    def _named(self) -> set[str]:
        return {n for c in self.cases() for n in (c.frame_file, c.view_file)}

    def _files(self) -> list[Path]:
        return sorted(self.images.iterdir()) if self.images.is_dir() else []

    @_db
    def _sorted_files(self) -> tuple[list[Path], list[Path]]:
        """(cut short, unaccounted) image files. Cut short: named in `pending` and by no case,
        or a pending name's temporary; only these are ever swept. Unaccounted: named neither
        by a case nor by `pending`; kept, and reported."""
        pending, named = self._pending(), self._named()
        temporaries = {f".{n}.tmp" for n in pending}
        cut, known = (pending - named) | temporaries, named | pending | temporaries
        files = self._files()
        return [p for p in files if p.name in cut], [p for p in files if p.name not in known]

    def orphans(self) -> list[Path]:
        return self._sorted_files()[0]

    def unaccounted(self) -> list[Path]:
        return self._sorted_files()[1]

    @_db
    def remove_orphans(self) -> int:
        """The daemon's start-up sweep (it holds the state folder's lock: no other saver)."""
        found = self.orphans()
        for p in found:
            p.unlink(missing_ok=True)
        self.db.execute("DELETE FROM pending")
        return len(found)

    @_db
    def delete(self, cases: list[Case]) -> None:
        """Rows deleted and their files recorded as pending in one transaction, then the files:
        a cut in between leaves files the next sweep removes."""
        names = [n for c in cases for n in (c.frame_file, c.view_file)]
        with self._transaction():
            self.db.executemany("DELETE FROM cases WHERE id=?", [(c.id,) for c in cases])
            self.db.executemany(
                "INSERT OR IGNORE INTO pending (file) VALUES (?)", [(n,) for n in names]
            )
        for name in names:
            try:
                self.image(name).unlink(missing_ok=True)
            except DeviceError:  # a tampered row's name: its file is not the store's to delete
                continue
        self.db.executemany("DELETE FROM pending WHERE file=?", [(n,) for n in names])

    def keep_newest(self, limit: int) -> int:
        """Retention: drop the oldest cases beyond `limit` (0 = keep all)."""
        if limit <= 0:
            return 0
        old = self.cases()[:-limit] if self.count() > limit else []
        self.delete(old)
        return len(old)

    @contextlib.contextmanager
    def _transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # a full disk may have rolled it back already
                self.db.execute("ROLLBACK")
            raise
