"""`mpox-train calibrate --site DIR --bundle B --out NEW`: one site's threshold from its own
lab-confirmed photos (`mpox-screen cases export --training`), as a new bundle version.

The site's photos are scored by the bundle's own int8 ONNX file, as the kit scores them, and the
threshold is the highest that keeps sensitivity >= 0.95 on the positives the kit judges, however
poor the specificity there: a screening kit never trades missed patients for fewer referrals.
Model files and the "cannot judge" data are copied unchanged; the new manifest records the site
calibration (site, counts, the photos by hash, before and after), gets a new version and time,
and carries no signature until `mpox-screen bundle sign`. A photo refused as "cannot judge" is a
miss at any threshold: the numbers count it so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from device.core.bundle import Bundle, load_bundle
from device.core.screener import Screener
from device.core.stats import rate
from train_host import UserError
from train_host.data import load_dataset
from train_host.derive import derive, new_folder
from train_host.metrics import choose_threshold

MIN_EACH = 20  # positives and negatives: with 20, sensitivity 0.95 reads as 0.76-0.99 (Wilson)


def rates(y: np.ndarray, called: np.ndarray) -> dict:
    """Sensitivity and specificity with Wilson 95 % intervals."""
    return {
        name: rate(int((called[part] == want).sum()), int(part.sum()))
        for name, part, want in (("sensitivity", y == 1, True), ("specificity", y == 0, False))
    }


def score(bundle: Bundle, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """P(mpox) and the gate's finding per photo, by the kit's int8 ONNX file."""
    screener = Screener(bundle, bundle.select("onnx", "int8"), threads=2)
    verdicts = [screener.predict(im) for im in images]
    return np.array([v.frame_prob for v in verdicts]), np.array([v.judgeable for v in verdicts])


def calibrate_site(site: Path, bundle_dir: Path, out: Path) -> dict:
    new_folder(out)
    data = load_dataset(site, "binary", allow_no_positive=True)
    y = (data.labels == data.class_names.index("mpox")).astype(int)
    if min(y.sum(), (1 - y).sum()) < MIN_EACH:
        raise UserError(
            f"{site}: {y.sum()} positive and {(1 - y).sum()} negative photos; a site calibration "
            f"needs at least {MIN_EACH} of each (with fewer, sensitivity's 95 % interval is wider "
            "than 0.76-0.99)"
        )
    bundle = load_bundle(bundle_dir)  # verified once: scored, then copied, from these bytes
    p, judged = score(bundle, data.images)
    before = bundle.manifest
    # on the photos the kit judges (a refusal is a miss at any threshold), and never below the
    # kit's sensitivity target: a site that cannot reach it gets poor specificity, said so,
    # not a threshold that misses patients (what Youden's J would choose)
    t = choose_threshold(y[judged], p[judged], min_specificity=0.0)
    result = {
        "site": site.name,
        "photos": len(y),
        "positives": int(y.sum()),
        "negatives": int((1 - y).sum()),
        "photos_sha256": _photos_hash(data.paths),
        "rule": t.rule,
        "threshold_before": before.threshold,
        "threshold": t.value,
        "before": rates(y, judged & (p >= before.threshold)),
        "after": rates(y, judged & (p >= t.value)),
        "cannot_judge": int((~judged).sum()),
        "cannot_judge_positives": int((~judged & (y == 1)).sum()),  # misses at any threshold
        "measured_on": "the photos it was fitted on (optimistic): check it on later cases",
    }
    _new_bundle(bundle, out, result)
    return result


def _photos_hash(paths: list[Path]) -> str:
    """One hash of the site's photos (each by content): which cases made this calibration."""
    each = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in paths)
    return hashlib.sha256("\n".join(each).encode()).hexdigest()


def _new_bundle(old: Bundle, out: Path, result: dict) -> None:
    """The bundle's files unchanged; the threshold and the calibration in a new manifest."""

    def edit(m: dict) -> None:
        after = result["after"]
        m["threshold"] = result["threshold"]
        m["operating_point"] = {
            "rule": result["rule"],
            "chosen_on": f"photos of site {result['site']}",
            "val_sensitivity": after["sensitivity"]["value"],
            "val_specificity": after["specificity"]["value"],
            "test_sensitivity": None,  # no held-out part: the kit's own report measures it next
            "test_specificity": None,
        }
        m["site_calibration"] = result

    derive(old, out, f"site.{result['site']}", edit)
