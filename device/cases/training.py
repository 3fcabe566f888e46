"""`mpox-screen cases export --training DIR`: a clinic's lab-confirmed cases as a collection
`mpox-train` reads (class folders), so every site becomes a source of labelled photos, mpox photos
from a second source above all.

Only cases with a positive or negative result go out, and where the kit asks consent per case
(config `consent_per_case`), only those with consent recorded (`cases consent N`). Each photo is
the camera frame the model read, decoded and re-encoded (no EXIF or other metadata survives) and
named by its content hash: no patient reference, no time in a file name. `manifest.csv` beside
the class folders says per photo: site, kit, model, result, test, diagnosis, skin tone and
capture time.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device import DeviceError
from device.cases.store import Case, CaseStore, digest, write_atomic
from device.core.names import is_plain

MANIFEST = "manifest.csv"
FIELDS = ("file", "class", "site", "kit", "bundle", "bundle_version", "result", "result_test")
FIELDS += ("result_date", "diagnosis", "ita", "saved_at")
JPEG_QUALITY = 95


@dataclass(frozen=True)
class TrainingExport:
    folder: Path
    photos: int
    classes: dict[str, int]
    left_out: int  # cases with a result but no consent recorded (consent asked per case)


def class_of(c: Case) -> str | None:
    """The folder: `mpox` for a positive result; a negative one by the clinician's diagnosis
    (`bites`, `scabies`, ...), else `other`; None without a positive or negative result."""
    if c.result == "positive":
        return "mpox"
    if c.result == "negative":
        return c.diagnosis if c.diagnosis and c.diagnosis != "mpox" else "other"
    return None


def clean_jpeg(data: bytes) -> bytes:
    """The pixels only: decoded and encoded again, so no metadata of the original survives."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DeviceError("a saved frame is not a readable image")
    ok, out = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DeviceError("could not encode a frame")
    return out.tobytes()


def export_training(store: CaseStore, to: Path, site: str, consent_asked: bool) -> TrainingExport:
    if not is_plain(site):
        raise DeviceError(f"--site {site[:60]!r}: a plain folder name (letters, digits, - _ .)")
    if not to.is_dir():
        raise DeviceError(f"--training {to}: not a folder (mount the USB stick first)")
    folder = to / site
    rows, counts, left_out = [], {}, 0
    try:
        for c in store.cases():
            cls = class_of(c)
            if cls is None:
                continue
            if consent_asked and not c.consent:
                left_out += 1
                continue
            data = clean_jpeg(store.image(c.frame_file).read_bytes())
            name = f"{digest(data)[:20]}.jpg"
            (folder / cls).mkdir(parents=True, exist_ok=True)
            if not (folder / cls / name).is_file():
                write_atomic(folder / cls / name, data, 0o644)
            counts[cls] = counts.get(cls, 0) + 1
            rows.append({"file": f"{cls}/{name}", "class": cls, "site": site} | _facts(c))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        if rows:
            write_atomic(folder / MANIFEST, buf.getvalue().encode(), 0o644)
    except OSError as e:
        raise DeviceError(f"training export to {folder} failed: {e.strerror or e}") from None
    if not rows:
        raise DeviceError(
            "no case has a positive or negative lab result"
            + (f" and consent recorded ({left_out} without)" if left_out else "")
            + ": record results first (cases result / import-results)"
        )
    return TrainingExport(folder, len(rows), counts, left_out)


def _facts(c: Case) -> dict:
    keys = ("kit", "bundle", "bundle_version", "result", "result_test", "result_date")
    facts = {k: getattr(c, k) for k in keys}
    return facts | {"diagnosis": c.diagnosis, "ita": c.ita, "saved_at": c.saved_at}
