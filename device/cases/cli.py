"""`mpox-screen cases ...`: list, show, verify, export and purge the kit's saved cases, and
record their lab results."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from datetime import date
from pathlib import Path

from device import DeviceError
from device.cases.export import export
from device.cases.report import reliability_png, summary, text
from device.cases.results import (
    DIAGNOSES,
    RESULTS,
    TESTS,
    BadRows,
    LabResult,
    Target,
    apply,
    read_results,
)
from device.cases.store import CaseStore
from device.cases.training import export_training
from device.config import SYSTEM_CONFIG, Config, load, state_dir
from device.i18n import add_language_flag
from device.i18n import use as use_language


def _day(v: str) -> str:
    try:
        return date.fromisoformat(v).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{v!r} is not a date (YYYY-MM-DD)") from None


def _case_id(v: str) -> int:
    if not (v.isascii() and v.isdigit()) or len(v) > 18:  # SQLite's integers are 64-bit
        raise argparse.ArgumentTypeError(f"{v[:40]!r} is not a case number")
    return int(v)


MAX_REFERENCE = 200


def _reference(v: str) -> str:
    """A patient reference as typed or scanned: one line of printable text (it goes into the
    CSV a clinic opens in a spreadsheet, and into one line of `cases list`)."""
    if len(v) > MAX_REFERENCE:
        raise argparse.ArgumentTypeError(f"a reference of {len(v)} characters (at most 200)")
    if not v.isprintable():
        raise argparse.ArgumentTypeError(f"{shown(v)!r} holds control characters (a new line?)")
    return v


def shown(text: str) -> str:
    """Text from the database as one printable line (a row written by older code or by hand)."""
    return text if text.isprintable() else text.encode("unicode_escape").decode()


def add_arguments(p) -> None:
    p.add_argument(
        "--state-dir", type=Path, default=None, help="default: $STATE_DIRECTORY, else ./state"
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"the kit's TOML file (default {SYSTEM_CONFIG} if present): its state_dir, "
        "consent_per_case and language",
    )
    add_language_flag(p)
    cmd = p.add_subparsers(dest="cases_command", metavar="ACTION", required=True)
    q = cmd.add_parser("list", help="one line per case")
    q.add_argument("--json", action="store_true", help="one JSON line per case")
    cmd.add_parser("show", help="everything about one case").add_argument("id", type=_case_id)
    cmd.add_parser("verify", help="database and every image checked; exit 0 only if all whole")
    q = cmd.add_parser("export", help="copy every case to a folder (a USB stick)")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", type=Path, metavar="DIR", help="every case, as the kit saved it")
    where.add_argument(
        "--training",
        type=Path,
        metavar="DIR",
        help="the lab-confirmed cases as a collection mpox-train reads (DIR/SITE/CLASS/...)",
    )
    q.add_argument("--site", default=None, help="the collection's name (default: the kit's)")
    q.add_argument(
        "--translated-header",
        action="store_true",
        help="cases.csv's header row in the kit's language (default: stable English keys)",
    )
    q = cmd.add_parser("purge", help="delete cases saved before a day")
    q.add_argument("--before", type=_day, required=True, metavar="YYYY-MM-DD")
    q = cmd.add_parser("ref", help="attach a patient reference (typed or scanned) to a case")
    q.add_argument("id", type=_case_id)
    q.add_argument("reference", type=_reference)
    q = cmd.add_parser("result", help="record a case's lab result (and the final diagnosis)")
    q.add_argument("id", type=_case_id)
    q.add_argument("result", choices=RESULTS)
    q.add_argument("--test", choices=TESTS, default="pcr")
    q.add_argument("--date", type=_day, default=None, metavar="YYYY-MM-DD", help="of the test")
    q.add_argument("--diagnosis", choices=DIAGNOSES, default="", help="the clinician's final one")
    q = cmd.add_parser(
        "import-results",
        help="lab results from a CSV (columns: case or reference, result; test, date, diagnosis)",
    )
    q.add_argument("file", type=Path, metavar="FILE.csv")
    q = cmd.add_parser("consent", help="record the patient's consent to training use")
    q.add_argument("id", type=_case_id)
    q.add_argument("--withdraw", action="store_true", help="consent withdrawn")
    q = cmd.add_parser("report", help="how the kit does against the lab results, with intervals")
    q.add_argument(
        "--since", type=_day, default=None, metavar="YYYY-MM-DD", help="cases saved from"
    )
    q.add_argument("--bundle", default=None, metavar="VERSION", help="one model version only")
    q.add_argument("--json", action="store_true", help="one JSON object (stable English keys)")
    q.add_argument("--png", type=Path, default=None, help="the reliability plot here")


WRITES = {
    "purge",
    "ref",
    "result",
    "import-results",
    "consent",
}  # the others open the database read-only (a read-only card too)


def run(args) -> int:
    kit = _kit_config(args.config)  # where the daemon saves (its state_dir), its language
    use_language(args.language or kit.kit.language)
    args.consent_per_case = kit.cases.consent_per_case
    root = args.state_dir or state_dir(kit.cases)
    write = args.cases_command in WRITES
    with CaseStore(root, create=False, write=write) as store:
        return ACTIONS[args.cases_command](store, args)


def _kit_config(path: Path | None) -> Config:
    """The kit's config; a broken system file must not keep anyone from their saved cases."""
    try:
        return load(path, {})
    except DeviceError as e:
        if path is not None:
            raise
        print(f"mpox-screen cases: warning: {e}; the defaults apply", file=sys.stderr)
        return Config()


def _list(store: CaseStore, args) -> int:
    for c in store.cases():
        if args.json:
            print(json.dumps(c.as_dict()))
        else:
            prob = "" if c.smoothed_prob is None else f"  P={c.smoothed_prob:.3f}"
            ref = f"  ref {shown(c.reference)}" if c.reference else ""
            print(f"{c.id:5d}  {shown(c.saved_at)}  {shown(c.verdict)}{prob}{ref}")
    return 0


def _show(store: CaseStore, args) -> int:
    c = store.get(args.id)
    for key, value in c.as_dict().items():
        print(f"{key:15s} {shown(str(value))}")
    print(f"{'images':15s} {store.image(c.frame_file)}, {store.image(c.view_file)}")
    return 0


def _verify(store: CaseStore, args) -> int:
    problems = store.verify()
    for p in problems:
        print(p)
    print(
        f"{store.count()} cases: " + ("all whole" if not problems else f"{len(problems)} problems")
    )
    return 1 if problems else 0


def _export(store: CaseStore, args) -> int:
    if args.training:
        asked = args.consent_per_case
        t = export_training(store, args.training, args.site or socket.gethostname(), asked)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(t.classes.items()))
        left = f"; {t.left_out} without consent left out" if t.left_out else ""
        print(f"exported {t.photos} lab-confirmed photos to {t.folder} ({kinds}){left}")
        return 0
    r = export(store, args.to, args.translated_header)
    for line in r.skipped:
        print(line, file=sys.stderr)
    print(f"exported {r.cases} cases to {r.folder} ({r.new_images} new images)")
    return 1 if r.skipped else 0


def _purge(store: CaseStore, args) -> int:
    old = store.cases(before=args.before)
    store.delete(old)
    print(f"deleted {len(old)} cases saved before {args.before}; {store.count()} remain")
    return 0


def _ref(store: CaseStore, args) -> int:
    store.set_reference(args.id, args.reference)
    print(f"case {args.id}: reference {args.reference!r}")
    return 0


def _result(store: CaseStore, args) -> int:
    row = LabResult(args.result, args.test, args.date or "", args.diagnosis)
    apply(store, [(Target(case=args.id), row)], f"case {args.id}")
    print(f"case {args.id}: {args.result} ({args.test}{', ' + args.date if args.date else ''})")
    return 0


def _import_results(store: CaseStore, args) -> int:
    try:
        changed, same = apply(store, read_results(args.file), str(args.file))
    except BadRows as e:
        for line in e.lines:
            print(line, file=sys.stderr)
        print(f"{args.file}: {len(e.lines)} bad rows; nothing recorded", file=sys.stderr)
        return 2
    print(f"{args.file}: results recorded for {changed} cases ({same} had them already)")
    return 0


def _consent(store: CaseStore, args) -> int:
    store.set_consent(args.id, not args.withdraw)
    print(f"case {args.id}: consent {'withdrawn' if args.withdraw else 'recorded'}")
    return 0


def _report(store: CaseStore, args) -> int:
    picked = [
        c
        for c in store.cases()
        if (args.since is None or c.saved_at[:10] >= args.since)
        and (args.bundle is None or args.bundle in (c.bundle_version, c.bundle))
    ]
    s = summary(picked)
    print(json.dumps(s) if args.json else text(s))
    if args.png:
        try:
            reliability_png(picked, args.png)
        except OSError as e:
            raise DeviceError(f"--png {args.png}: cannot write it ({e.strerror})") from None
    return 0


ACTIONS = {
    "list": _list,
    "show": _show,
    "verify": _verify,
    "export": _export,
    "purge": _purge,
    "ref": _ref,
    "result": _result,
    "import-results": _import_results,
    "report": _report,
    "consent": _consent,
}
