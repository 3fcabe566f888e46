"""Lab results and diagnoses joined to saved cases: what turns each kit into its own evaluation.

A result comes back days after the photo, from a lab or the clinic's register, by case number or
by the patient reference typed at the kit (every case with that reference gets it: one PCR test
per patient visit). `cases result` records one; `cases import-results FILE.csv` a lab's list. An
import is checked whole before anything is written, and written in one transaction: a file with
a bad row changes nothing and names every bad row in one line each; importing the same file again
changes nothing (idempotent).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from device import DeviceError
from device.cases.store import CaseStore

RESULTS = ("positive", "negative", "inconclusive")
TESTS = ("pcr", "other")
DIAGNOSES = ("mpox", "chickenpox", "shingles", "scabies", "impetigo", "bites", "molluscum")
DIAGNOSES += ("measles", "herpes", "other")
MAX_FILE = 8 << 20  # a lab's list: thousands of rows are well under a megabyte
COLUMNS = ("case", "reference", "result", "test", "date", "diagnosis")


@dataclass(frozen=True)
class LabResult:
    result: str  # positive | negative | inconclusive
    test: str = "pcr"  # pcr | other
    date: str = ""  # YYYY-MM-DD the sample was tested; "" unknown
    diagnosis: str = ""  # the clinician's final diagnosis, from DIAGNOSES; "" not given

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.result, RESULTS, "result"),
            (self.test, TESTS, "test"),
        ):
            if value not in allowed:
                raise ValueError(f"{what} {value[:40]!r}: one of {', '.join(allowed)}")
        if self.diagnosis and self.diagnosis not in DIAGNOSES:
            raise ValueError(f"diagnosis {self.diagnosis[:40]!r}: one of {', '.join(DIAGNOSES)}")
        if self.date:
            try:
                if date.fromisoformat(self.date).isoformat() != self.date:
                    raise ValueError
            except ValueError:
                raise ValueError(f"date {self.date[:40]!r}: YYYY-MM-DD") from None


@dataclass(frozen=True)
class Target:
    """Which cases a row is about: a case number, or every case with a patient reference."""

    case: int | None = None
    reference: str = ""


class BadRows(DeviceError):
    """Rows that cannot be applied, one line each; nothing was written."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        more = f" (and {len(lines) - 1} more bad rows)" if len(lines) > 1 else ""
        super().__init__(lines[0] + more)


def parse_rows(data: bytes, where: str) -> list[tuple[Target, LabResult]]:
    """Every row of a results CSV, or BadRows naming each bad row."""
    if len(data) > MAX_FILE:
        raise DeviceError(f"{where}: larger than {MAX_FILE >> 20} MB: not a results list")
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        reader.fieldnames = header
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DeviceError(f"{where}: not a UTF-8 CSV file ({str(e)[:80]})") from None
    if "result" not in header or not {"case", "reference"} & set(header):
        raise DeviceError(
            f"{where}: needs a 'result' column and a 'case' or 'reference' column (has: "
            f"{', '.join(header)[:120]})"
        )
    parsed, bad = [], []
    for line, row in enumerate(rows, start=2):
        try:
            parsed.append(_row(row))
        except ValueError as e:
            bad.append(f"{where} line {line}: {e}")
    if bad:
        raise BadRows(bad)
    if not parsed:
        raise DeviceError(f"{where}: no rows")
    return parsed


def _row(row: dict) -> tuple[Target, LabResult]:
    get = {k: (row.get(k) or "").strip() for k in COLUMNS}
    if get["case"]:
        if not (get["case"].isascii() and get["case"].isdigit()) or len(get["case"]) > 18:
            raise ValueError(f"case {get['case'][:40]!r} is not a case number")
        target = Target(case=int(get["case"]))
    elif get["reference"]:
        target = Target(reference=get["reference"])
    else:
        raise ValueError("neither a case number nor a reference")
    result = LabResult(
        get["result"].lower(), get["test"].lower() or "pcr", get["date"], get["diagnosis"].lower()
    )
    return target, result


def apply(store: CaseStore, rows: list[tuple[Target, LabResult]], where: str) -> tuple[int, int]:
    """Every row's cases found first (BadRows if any is not: nothing written), then all written
    in one transaction. Returns (cases changed, cases already so)."""
    plan: dict[int, LabResult] = {}
    bad = []
    for line, (target, result) in enumerate(rows, start=2):
        ids = store.ids_for(target.case, target.reference)
        if not ids:
            what = (
                f"case {target.case}"
                if target.case is not None
                else f"reference {target.reference[:60]!r}"
            )
            bad.append(
                f"{where} line {line}: no saved {what}" if len(rows) > 1 else f"no saved {what}"
            )
        plan |= dict.fromkeys(ids, result)  # a later row for the same case wins
    if bad:
        raise BadRows(bad)
    values = {i: (r.result, r.test, r.date, r.diagnosis) for i, r in plan.items()}
    changed = store.set_results(values)
    return changed, len(values) - changed


def read_results(path: Path) -> list[tuple[Target, LabResult]]:
    try:
        if not path.is_file():
            raise DeviceError(f"{path}: no such file")
        with path.open("rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as e:
        raise DeviceError(f"{path}: cannot read it ({e.strerror})") from None
    return parse_rows(data, str(path))
