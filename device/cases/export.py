"""`mpox-screen cases export --to DIR`: the kit's cases onto a USB stick, safely and repeatably.

DIR/mpox-screen-cases/ holds `images/`, `cases.csv` and `SHA256SUMS`. Images are content-unique
names, copied atomically and only when missing; the CSV and checksum file are replaced atomically
after every image is in place. So an export cut short (stick pulled, disk full) leaves the
previous export as it was, a re-export adds only what is new and never duplicates a row, and a
case purged from the kit after an export stays in the exported CSV. The kit's store is only read.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass, fields
from pathlib import Path

from device import DeviceError
from device.cases.store import Case, CaseStore, digest, write_atomic
from device.core.names import is_plain
from device.i18n import N_, _, everywhere

FOLDER = "mpox-screen-cases"
COLUMNS = ["kit", *(f.name for f in fields(Case) if f.name != "kit")]
HEADERS = {  # a header row in the kit's language, on request (`--translated-header`)
    "kit": N_("Kit"),
    "saved_at": N_("Saved at (UTC)"),
    "verdict": N_("Screen said"),
    "status": N_("Status"),
    "smoothed_prob": N_("P(mpox), smoothed"),
    "ood_score": N_("Not-like-training score"),
    "quality": N_("Image quality"),
    "bundle": N_("Model"),
    "bundle_version": N_("Model version"),
    "bundle_sha256": N_("Model file SHA-256"),
    "reference": N_("Patient reference"),
    "id": N_("Case"),
    "frame_file": N_("Camera image"),
    "frame_sha256": N_("Camera image SHA-256"),
    "view_file": N_("Screen image"),
    "view_sha256": N_("Screen image SHA-256"),
    "label": N_("Label"),
    "positive": N_("Positive"),
    "frame_prob": N_("P(mpox), this frame"),
    "threshold": N_("Threshold"),
    "ita": N_("Skin tone (ITA, degrees)"),
    "result": N_("Lab result"),
    "result_test": N_("Test"),
    "result_date": N_("Result date"),
    "diagnosis": N_("Diagnosis"),
    "consent": N_("Consent"),
}
OLD_HEADERS = {"smoothed_prob": ("prob", "P(mpox)")}  # what exports before 2026-12-04 wrote


MAX_CSV = 64 << 20  # an earlier export's cases.csv: far above any kit's (a case is ~1 kB)
NEEDED = ("saved_at", "frame_file", "frame_sha256", "view_file", "view_sha256")
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting so


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    cases: int  # rows in the exported CSV
    new_images: int
    skipped: tuple[str, ...] = ()  # cases not exported, one line each (a tampered row)


def _previous_rows(csv_path: Path) -> dict[str, dict]:
    """The rows of an earlier export, whatever language its header was written in. A file
    this kit did not write (or a damaged one) is refused, never overwritten."""
    if not csv_path.is_file():
        return {}
    key = {label: k for k in COLUMNS for label in (k, *everywhere(HEADERS[k]))}
    key |= {label: k for k, old in OLD_HEADERS.items() for label in old}
    try:
        if csv_path.stat().st_size > MAX_CSV:
            raise ValueError(f"larger than {MAX_CSV >> 20} MB")
        with csv_path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            names = [key.get(h, h) for h in next(reader, [])]
            rows = [dict(zip(names, r, strict=False)) for r in reader]
        missing = [k for k in NEEDED if k not in names]
        if missing:
            raise ValueError(f"no {_(HEADERS[missing[0]])!r} column")
        bad = [r.get(k) for r in rows for k in ("frame_file", "view_file")]
        if not all(is_plain(n) for n in bad):
            raise ValueError("an image name that is not a plain file name")
    except (ValueError, csv.Error) as e:  # UnicodeDecodeError is a ValueError
        raise DeviceError(
            f"{csv_path}: not a cases.csv this kit can read ({str(e)[:120]}); move it aside "
            "and export again"
        ) from None
    return {r["frame_file"]: r for r in rows}


def cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, quoted (OWASP's CSV injection rule);
    numbers stay numbers."""
    if not isinstance(value, str) or not value.startswith(FORMULA):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def _csv_bytes(rows: list[dict], translated: bool) -> bytes:
    """The header row: the stable English keys, which any program reads; the kit's language
    only on request (a person's spreadsheet). A re-export reads either."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, extrasaction="ignore")
    writer.writerow({k: _(HEADERS[k]) if translated else k for k in COLUMNS})
    writer.writerows({k: cell(v) for k, v in r.items()} for r in rows)
    return buf.getvalue().encode("utf-8")


def export(store: CaseStore, to: Path, translated_header: bool = False) -> ExportResult:
    if not to.is_dir():
        raise DeviceError(f"--to {to}: not a folder (mount the USB stick first)")
    folder = to / FOLDER
    images = folder / "images"
    try:
        images.mkdir(parents=True, exist_ok=True)
        rows = _previous_rows(folder / "cases.csv")
        kit, new, skipped = socket.gethostname(), 0, []
        for case in store.cases():
            try:
                sources = [store.image(n) for n in (case.frame_file, case.view_file)]
            except DeviceError as e:
                skipped.append(f"case {case.id} not exported: {e}")
                continue
            for src in sources:
                if not (images / src.name).is_file():
                    write_atomic(images / src.name, src.read_bytes(), 0o644)
                    new += 1
            rows[case.frame_file] = case.as_dict() | ({} if case.kit else {"kit": kit})
        ordered = sorted(rows.values(), key=lambda r: (r["saved_at"], r["frame_file"]))
        pairs = [(r[f"{k}_sha256"], r[f"{k}_file"]) for r in ordered for k in ("frame", "view")]
        sums = "".join(f"{h}  images/{name}\n" for h, name in pairs)
        write_atomic(folder / "SHA256SUMS", sums.encode(), 0o644)
        write_atomic(folder / "cases.csv", _csv_bytes(ordered, translated_header), 0o644)
        problems = check_export(folder)
    except OSError as e:
        raise DeviceError(
            f"export to {folder} failed: {e.strerror or e}; the kit's cases are untouched and "
            "the previous export is as it was"
        ) from None
    if problems:  # read back from the stick: a failing one keeps the kit's copy as the truth
        raise DeviceError(
            f"export to {folder}: {len(problems)} files read back wrong: {problems[0]}"
        )
    return ExportResult(folder, len(ordered), new, tuple(skipped))


def check_export(folder: Path) -> list[str]:
    """Every file of an exported folder read back against SHA256SUMS (what `verify` is to the
    store); `export` runs it on what it has just written."""
    problems = []
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        want, name = line.split("  ", 1)
        path = folder / name
        if not path.is_file() or digest(path.read_bytes()) != want:
            problems.append(f"{name}: missing or changed")
    return problems
