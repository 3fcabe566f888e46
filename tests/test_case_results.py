"""Lab results joined to saved cases (device/cases/results.py), through the CLI a clinic uses."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from device.cases.store import Case, CaseStore
from tests.conftest import one_line_error, run_cli


def cases(state: Path, *args, ok: bool = True):
    return run_cli("device.cli", "cases", "--state-dir", state, *args, ok=ok, timeout=120)


@pytest.fixture
def state(tmp_path) -> Path:
    """Three saved cases: two of patient PT-1 (two photos of one visit), one of PT-2."""
    root = tmp_path / "state"
    with CaseStore(root) as store:
        for i, ref in enumerate(("PT-1", "PT-1", "PT-2")):
            case = Case(f"2026-12-0{i + 1}T10:00:00.000+00:00", "Mpox likely", "ok", 0.8, 0.4,
                        "{}", "b", "1", "0" * 64, reference=ref, positive=True, label="mpox",
                        threshold=0.2)  # fmt: skip
            store.save(case, b"f%d" % i, b"v%d" % i)
    return root


def listed(state: Path) -> list[dict]:
    return [json.loads(line) for line in cases(state, "list", "--json").stdout.splitlines()]


def test_a_result_is_recorded_for_one_case(state):
    cases(state, "result", "2", "negative", "--date", "2026-12-04", "--diagnosis", "bites")
    rows = listed(state)
    assert [r["result"] for r in rows] == ["", "negative", ""]
    assert (rows[1]["result_test"], rows[1]["result_date"]) == ("pcr", "2026-12-04")
    assert rows[1]["diagnosis"] == "bites"
    assert "no saved case 9" in one_line_error(cases(state, "result", "9", "positive", ok=False))


def test_an_import_applies_by_reference_and_number_and_is_idempotent(state, tmp_path):
    lab = tmp_path / "lab.csv"
    lab.write_text("reference,case,result,date\nPT-1,,positive,2026-12-03\n,3,NEGATIVE,\n")
    first = cases(state, "import-results", lab)
    assert "recorded for 3 cases (0 had them already)" in first.stdout
    assert [(r["result"], r["result_date"]) for r in listed(state)] == [
        ("positive", "2026-12-03"), ("positive", "2026-12-03"), ("negative", "")]  # fmt: skip
    again = cases(state, "import-results", lab)
    assert "recorded for 0 cases (3 had them already)" in again.stdout


def test_an_import_with_bad_rows_names_each_and_writes_nothing(state, tmp_path):
    lab = tmp_path / "lab.csv"
    lab.write_text("case,result,date\n1,positive,\n2,maybe,\n77,negative,\n3,negative,2026-13-01\n")
    proc = cases(state, "import-results", lab, ok=False)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(err) == 3 and "lab.csv line 3: result 'maybe'" in err[0]
    assert (
        "lab.csv line 5: date '2026-13-01'" in err[1] and "2 bad rows; nothing recorded" in err[2]
    )
    assert [r["result"] for r in listed(state)] == ["", "", ""]  # not even row 1
    # the unknown case is found only once the rows parse: then it is the one bad row
    lab.write_text("case,result\n1,positive\n77,negative\n")
    proc = cases(state, "import-results", lab, ok=False)
    assert "line 3: no saved case 77" in proc.stderr
    assert listed(state)[0]["result"] == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00garbage", "not a UTF-8 CSV file"),
        (b"patient,outcome\nPT-1,positive\n", "needs a 'result' column"),
        (b"case,result\n", "no rows"),
    ],
)
def test_a_file_that_is_not_a_results_list_is_one_line(state, tmp_path, content, message):
    lab = tmp_path / "lab.csv"
    lab.write_bytes(content)
    assert message in one_line_error(cases(state, "import-results", lab, ok=False))
    missing = cases(state, "import-results", tmp_path / "nowhere.csv", ok=False)
    assert "no such file" in one_line_error(missing)


def _scored_store(root: Path) -> None:
    """14 positive results: 10 called likely, 2 unlikely, 2 without a verdict (cannot judge);
    12 negative: 9 unlikely, 3 likely; one inconclusive; one without a result."""
    plan = [("positive", "ok", True)] * 10 + [("positive", "ok", False)] * 2
    plan += [("positive", "cannot_judge", None)] * 2
    plan += [("negative", "ok", False)] * 9 + [("negative", "ok", True)] * 3
    plan += [("inconclusive", "ok", True), ("", "ok", False)]
    with CaseStore(root) as store:
        for i, (result, status, positive) in enumerate(plan):
            day = "2026-11-20" if i < 4 else "2026-12-01"
            case = Case(f"{day}T10:00:{i:02d}.000+00:00", "x", status,
                        None if positive is None else (0.9 if positive else 0.1), 0.4, "{}",
                        "b", "1" if i % 2 else "2", "0" * 64, positive=positive,
                        label="mpox" if positive else "other", ita=-45.0 if i < 13 else 50.0,
                        result=result)  # fmt: skip
            store.save(case, b"f%d" % i, b"v%d" % i)


def test_the_report_counts_a_refusal_as_a_miss_with_intervals(tmp_path):
    from device.core.stats import wilson

    root = tmp_path / "state"
    _scored_store(root)
    s = json.loads(cases(root, "report", "--json", "--png", tmp_path / "r.png").stdout)
    assert (s["n"], s["positives"], s["negatives"], s["inconclusive"], s["no_result"]) == (
        26, 14, 12, 1, 1)  # fmt: skip
    assert s["sensitivity"] == {"value": 10 / 14, "low": wilson(10, 14)[0],
                                "high": wilson(10, 14)[1], "n": 14}  # fmt: skip
    assert s["specificity"]["value"] == 9 / 12 and s["ppv"]["value"] == 10 / 13
    assert s["npv"]["value"] == 9 / 13 and s["enough"] is True
    assert s["confusion"]["no verdict"] == {"positive": 2, "negative": 0}
    assert set(s["by_bundle"]) == {"b 1", "b 2"}
    # 13 dark and 13 light cases scored: groups under 20 are merged, as every per-tone number is
    assert (
        list(s["by_skin_tone"]) == ["light + dark"] and s["by_skin_tone"]["light + dark"]["n"] == 26
    )
    assert s["cannot_judge_rate"]["value"] == 2 / 28
    assert (tmp_path / "r.png").stat().st_size > 5000
    recent = json.loads(cases(root, "report", "--json", "--since", "2026-12-01").stdout)
    assert recent["cases"] == 24


def test_too_few_results_are_said_plainly_in_the_kits_language(state, tmp_path):
    cases(state, "result", "1", "positive")
    out = cases(state, "report").stdout
    assert "Too few results to say: 1 positives and 0 negatives" in out
    fr = run_cli("device.cli", "cases", "--state-dir", state, "--language", "fr", "report").stdout
    assert "Trop peu de résultats" in fr


def _jpeg_with_exif(seed: int) -> bytes:
    """A real JPEG carrying EXIF that names the patient (what a phone camera would add)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x013B] = "PT-1 Jane Doe"  # Artist
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_the_training_export_is_a_collection_without_identifiers(tmp_path):
    """Lab-confirmed cases as class folders mpox-train reads (positives as mpox, negatives by
    the clinician's diagnosis), each photo re-encoded without metadata and named by content;
    with consent asked per case, only consented cases go."""
    from PIL import Image

    from train_host.data import load_dataset

    root = tmp_path / "state"
    with CaseStore(root) as store:
        for i in range(5):
            case = Case(f"2026-12-0{i + 1}T10:00:00.000+00:00", "x", "ok", 0.8, 0.4, "{}", "b",
                        "1", "0" * 64, reference="PT-1")  # fmt: skip
            store.save(case, _jpeg_with_exif(i), b"view")
    cases(root, "result", "1", "positive")
    cases(root, "result", "2", "positive", "--diagnosis", "mpox")
    cases(root, "result", "3", "negative", "--diagnosis", "bites")
    cases(root, "result", "4", "negative")
    cases(root, "result", "5", "inconclusive")
    stick = tmp_path / "stick"
    stick.mkdir()
    out = cases(root, "export", "--training", stick, "--site", "clinic-a").stdout
    assert "exported 4 lab-confirmed photos" in out and "bites 1, mpox 2, other 1" in out
    site = stick / "clinic-a"
    photos = sorted(p for p in site.rglob("*.jpg"))
    assert {p.parent.name for p in photos} == {"mpox", "bites", "other"} and len(photos) == 4
    for p in photos:
        assert not Image.open(p).getexif() and "PT-1" not in p.name
        assert b"Jane" not in p.read_bytes()
    rows = list(csv.DictReader((site / "manifest.csv").open()))
    assert {r["class"] for r in rows} == {"mpox", "bites", "other"} and "reference" not in rows[0]
    data = load_dataset(site, "binary", allow_no_positive=True)  # what mpox-train reads
    assert len(data.paths) == 4 and int(data.labels.sum()) == 2
    consent = tmp_path / "consent.toml"
    consent.write_text("consent_per_case = true\n")
    cases(root, "consent", "3")
    asked = cases(root, "--config", consent, "export", "--training", stick, "--site", "b").stdout
    assert "exported 1 lab-confirmed photos" in asked and "3 without consent left out" in asked


def test_a_verdict_saved_before_decisions_were_recorded_is_not_scored(state):
    """Cases of a migrated store carry a result but not what the kit decided: counted aside,
    never as "unlikely"."""
    with CaseStore(state) as store:  # as a store written before 2026-12-04 reads
        store.save(Case("2026-11-01T10:00:00.000+00:00", "Mpox likely", "ok", 0.8, 0.4, "{}",
                        "b", "1", "0" * 64), b"old-f", b"old-v")  # fmt: skip
    cases(state, "result", "4", "positive")
    cases(state, "result", "1", "positive")
    s = json.loads(cases(state, "report", "--json").stdout)
    assert s["n"] == 1 and s["decision_not_recorded"] == 1 and s["sensitivity"]["n"] == 1
