"""Saved cases: what the kit saw and said, kept through power cuts until exported or purged.

One SQLite database in WAL mode (`cases.db`) and the images beside it. Every image is written
atomically (temporary file, fsync, rename, fsync of the folder) BEFORE the row naming it is
committed, so a power cut leaves either a whole case or none: at worst an unnamed image file,
which is never listed and is removed at the next open. Files are 0600, the folder 0700: the
photos are patients' skin. Nothing leaves the kit except by `export`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from device import DeviceError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a case number stays one case
    saved_at TEXT NOT NULL,
    verdict TEXT NOT NULL,
    status TEXT NOT NULL,
    prob REAL,
    ood_score REAL,
    quality TEXT NOT NULL,
    bundle TEXT NOT NULL,
    bundle_version TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    frame_file TEXT NOT NULL,
    frame_sha256 TEXT NOT NULL,
    view_file TEXT NOT NULL,
    view_sha256 TEXT NOT NULL
)"""
DB = "cases.db"
IMAGES = "images"


@dataclass(frozen=True)
class Case:
    saved_at: str  # ISO 8601, UTC
    verdict: str  # what the screen said ("Mpox likely", "Cannot judge: ...", "Hold steady")
    status: str  # ok | poor_quality | cannot_judge
    prob: float | None
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

    def as_dict(self) -> dict:
        return asdict(self)


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


class CaseStore:
    def __init__(self, root: Path, create: bool = True):
        self.root = Path(root)
        self.images = self.root / IMAGES
        if not create and not (self.root / DB).is_file():
            raise DeviceError(f"no saved cases in {self.root} (no {DB})")
        try:
            for d in (self.root, self.images):
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.root / DB, timeout=10.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(SCHEMA)
            os.chmod(self.root / DB, 0o600)
        except (OSError, sqlite3.Error) as e:
            raise DeviceError(f"case store {self.root}: {e}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    # ---- saving --------------------------------------------------------------------------
    def save(self, case: Case, frame_jpeg: bytes, view_jpeg: bytes) -> int:
        """Images first (atomically), then the row that names them, in one transaction."""
        stem = f"{case.saved_at.replace(':', '').replace('-', '')}-{os.urandom(4).hex()}"
        files = {
            "frame": (f"{stem}-frame.jpg", frame_jpeg),
            "view": (f"{stem}-view.jpg", view_jpeg),
        }
        for name, data in files.values():
            write_atomic(self.images / name, data)
        row = case.as_dict() | {"id": None}
        for key, (name, data) in files.items():
            row |= {f"{key}_file": name, f"{key}_sha256": digest(data)}
        cols = [k for k in row if k != "id"]
        cur = self.db.execute(
            f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [row[k] for k in cols],
        )
        return int(cur.lastrowid)

    def set_reference(self, case_id: int, reference: str) -> None:
        if self.db.execute(
            "UPDATE cases SET reference=? WHERE id=?", (reference, case_id)
        ).rowcount:
            return
        raise DeviceError(f"no case {case_id}")

    # ---- reading -------------------------------------------------------------------------
    def cases(self, before: str | None = None) -> list[Case]:
        sql, args = "SELECT * FROM cases", ()
        if before:
            sql, args = sql + " WHERE saved_at < ?", (before,)
        return [Case(**dict(r)) for r in self.db.execute(sql + " ORDER BY id", args)]

    def get(self, case_id: int) -> Case:
        row = self.db.execute("SELECT * FROM cases WHERE id=?", (case_id,)).fetchone()
        if row is None:
            raise DeviceError(f"no case {case_id}")
        return Case(**dict(row))

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    # ---- checking and cleaning -----------------------------------------------------------
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
                path = self.images / name
                if not path.is_file():
                    problems.append(f"case {case.id}: {name} is missing")
                elif digest(path.read_bytes()) != want:
                    problems.append(f"case {case.id}: {name} does not match its checksum")
        return problems

    def orphans(self) -> list[Path]:
        """Image files no case names (a save cut short before its commit), and temporaries."""
        named = {n for c in self.cases() for n in (c.frame_file, c.view_file)}
        return [p for p in self.images.iterdir() if p.name not in named]

    def remove_orphans(self) -> int:
        found = self.orphans()
        for p in found:
            p.unlink(missing_ok=True)
        return len(found)

    def delete(self, cases: list[Case]) -> None:
        """Rows first (one transaction), then files: a cut in between leaves only orphans."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("DELETE FROM cases WHERE id=?", [(c.id,) for c in cases])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        for c in cases:
            for name in (c.frame_file, c.view_file):
                (self.images / name).unlink(missing_ok=True)

    def keep_newest(self, limit: int) -> int:
        """Retention: drop the oldest cases beyond `limit` (0 = keep all)."""
        if limit <= 0:
            return 0
        old = self.cases()[:-limit] if self.count() > limit else []
        self.delete(old)
        return len(old)
