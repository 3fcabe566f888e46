"""`mpox-screen`: the kit's command line. User errors print one line and exit 2."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from dataclasses import fields
from pathlib import Path

from device import KitError, __version__, one_line
from device.config import (
    SECTIONS,
    SYSTEM_CONFIG,
    ClassifyOptions,
    Config,
    flag_type,
    kit_language,
    load,
)
from device.i18n import add_language_flag
from device.i18n import use as use_language
from device.options import add_flags, from_args


class Parser(argparse.ArgumentParser):
    """A flag error is one line (the run command's usage alone is 30), with where to look."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mpox-screen",
        description="Mpox skin-lesion screening kit. A screening aid, not a diagnosis.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("classify", help="screen stored photos (files or folders)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add_flags(p, ClassifyOptions)
    add_language_flag(p)
    add_run_parser(sub)
    from device.cases import cli as cases_cli
    from device.updates import cli as bundle_cli

    cases_cli.add_parser(sub)
    bundle_cli.add_parser(sub)
    p = sub.add_parser("config", help="the daemon's configuration file")
    p.add_argument("--print-default", action="store_true", help="print a commented default file")
    p = sub.add_parser("timing-report", help="table and PNG of a timing.jsonl")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--png", type=Path, default=None, help="plot here (default: FILE.png)")
    return parser


def add_run_parser(sub) -> None:
    """`run`: one flag per config key, generated from the Config dataclass."""
    p = sub.add_parser("run", help="the kit: camera -> verdict and heat-map on screen (default)")
    p.add_argument(
        "--config", type=Path, default=None, help=f"TOML file (default {SYSTEM_CONFIG} if present)"
    )
    add_flags(p, Config, overrides=True, type_for=flag_type, sections=SECTIONS)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]  # `mpox-screen` alone starts the kit
    args = build_parser().parse_args(argv)
    try:
        if args.command == "cases":
            use_language(args.language or kit_language())
        if args.command == "classify":
            from device.classify import classify

            opts = from_args(ClassifyOptions, args)
            kit = load(opts.config, {})  # the screen's gates and language, for the same verdict
            use_language(args.language or kit.language)
            return classify(opts, kit)
        if args.command == "run":
            return run(args)
        if args.command == "config":
            from device.config import default_toml

            print(default_toml())
            return 0
        if args.command == "bundle":
            from device.updates import cli as bundle_cli

            return bundle_cli.run(args)
        if args.command == "cases":
            from device.cases import cli as cases_cli

            return cases_cli.run(args)
        if args.command == "timing-report":
            from device.live.timing_report import report

            return report(args.file, args.png)
        build_parser().print_help()
        return 2
    except KitError as e:
        print(f"mpox-screen: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head`
        sys.stderr.close()
        return 0


def run(args: argparse.Namespace) -> int:
    from device.config import load
    from device.live.daemon import Daemon

    overrides = {f.name: getattr(args, f.name) for f in fields(Config)}
    cfg = load(args.config, {k: v for k, v in overrides.items() if v is not None})
    # SIGTERM while the model loads (a stop or restart during boot): a clean, logged exit
    previous = signal.signal(signal.SIGTERM, _stopped_while_starting)
    try:
        daemon = Daemon(cfg)
    except StoppedWhileStarting:
        logging.getLogger("device.live.daemon").info(
            "stopped while starting; no frame was screened"
        )
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    return daemon.run()


class StoppedWhileStarting(Exception):
    pass


def _stopped_while_starting(*_: object) -> None:
    raise StoppedWhileStarting


if __name__ == "__main__":
    sys.exit(main())
