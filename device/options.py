"""Options written once, on a dataclass field: its help, type, range, choices and group live in the
field's `metadata` (`option()`), and the flags, their checks, the config file's checks and its
commented default all come from there. `mpox-screen` (the config's sections, `classify`),
`mpox-train fit | cv` (TrainConfig) and `mpox-bench` use it. `add_commands` and `main` are the one
way all three command lines dispatch: a lazy table of subcommand modules, user errors one line."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, dataclass, fields
from pathlib import Path
from typing import Any

TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str, "Path": Path}
MAX_TEXT = 4096  # PATH_MAX: no option's text is longer


def option(
    help: str,
    *,
    choices=(),
    lo: float | None = None,
    hi: float | None = None,
    type=None,
    metavar=None,
    group=None,
    flag: str | None = None,
) -> dict:
    """A field's metadata: its help, and optionally its choices, its range (lo..hi), a parsing
    function, a metavar, an argument group and a flag name other than the field's."""
    return {
        "help": help,
        "choices": tuple(choices),
        "lo": lo,
        "hi": hi,
        "type": type,
        "metavar": metavar,
        "group": group,
        "flag": flag,
    }


def problem(value: Any, meta) -> str | None:
    """What is wrong with `value` for the option (`metadata`), or None."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"{len(value):,} characters (at most {MAX_TEXT})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if meta.get("choices") and value not in meta["choices"]:
        return f"{value!r} is not one of {list(meta['choices'])}"
    if meta.get("lo") is not None and value < meta["lo"]:
        return f"{value} is below {meta['lo']}"
    if meta.get("hi") is not None and value > meta["hi"]:
        return f"{value} is above {meta['hi']}"
    return None


def parse_text(text: str, want: type) -> Any:
    """Command-line or config text -> `want`, or ValueError with a one-line reason."""
    if want is bool:
        if text.lower() in ("true", "yes", "on", "1"):
            return True
        if text.lower() in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    try:
        return want(text)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(want, want.__name__)
        raise ValueError(f"{text!r} is not {what}") from None


def checked(want: type, meta) -> Callable[[str], Any]:
    """An argparse type from the option's metadata: parsed, then its range and choices checked."""

    def parse(text: str):
        try:
            value = parse_text(text, want)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        wrong = problem(value, meta)
        if wrong:
            raise argparse.ArgumentTypeError(wrong)
        return value

    parse.__name__ = {int: "whole number", float: "number"}.get(want, want.__name__)
    return parse


def kind(f: Field) -> str:
    """The field's type name without `| None` ("int", "list[str]", "bool", ...)."""
    name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return name.replace(" | None", "").replace("None | ", "")


def default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


@dataclass(frozen=True)
class Flag:
    """One flag: its name (the dest; `--name-with-dashes`), the field it sets, its help group."""

    name: str
    field: Field
    group: str | None = None


def flags_of(cls, group: str | None = None) -> list[Flag]:
    """A dataclass's flags: every field with help, named by the field (or its `flag`), in its
    own group or `group`."""
    return [
        Flag(f.metadata.get("flag") or f.name, f, f.metadata.get("group") or group)
        for f in fields(cls)
        if "help" in f.metadata
    ]


def add_flags(parser, source, *, overrides: bool = False, group: str | None = None) -> None:
    """One flag per `Flag` (or per field with help of the dataclass `source`, in `group` unless
    the field names its own), in help groups in the order first met. `overrides`: every default
    is None, so only flags given override a config file (the help then says the field's
    default), and booleans are --x / --no-x (as is a boolean field whose default is None)."""
    groups: dict[str, Any] = {}
    for flag in flags_of(source, group) if isinstance(source, type) else source:
        f, meta = flag.field, flag.field.metadata
        target = parser
        if flag.group:
            target = groups.get(flag.group) or parser.add_argument_group(flag.group)
            groups[flag.group] = target
        name, k, help = "--" + flag.name.replace("_", "-"), kind(f), meta["help"]
        if overrides:
            help += f" (default: {default(f)!r})"
        if k == "bool":
            _add_switch(target, flag.name, name, help, None if overrides else default(f))
            continue
        kw: dict[str, Any] = {"dest": flag.name, "help": help, "metavar": meta.get("metavar")}
        if k.startswith("list["):
            kw |= {"action": "append", "type": TYPES[k[5:-1]], "default": None if overrides else []}
        else:
            kw["default"] = None if overrides else default(f)
            kw["type"] = meta.get("type") or checked(TYPES[k], meta)
            if meta.get("choices"):
                kw["metavar"] = kw["metavar"] or "|".join(map(str, meta["choices"]))
        target.add_argument(name, **kw)


def _add_switch(target, dest: str, name: str, help: str, value: bool | None) -> None:
    if value is None:  # unset: the value comes from elsewhere (a config file)
        action = argparse.BooleanOptionalAction
        target.add_argument(name, dest=dest, action=action, default=None, help=help)
    elif value:
        target.add_argument("--no-" + name[2:], dest=dest, action="store_false", help=help)
    else:
        target.add_argument(name, dest=dest, action="store_true", help=help)


def from_args(cls, args: argparse.Namespace, **given):
    """The record from the parsed flags (fields the parser has), plus `given`."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names} | given)


class Parser(argparse.ArgumentParser):
    """A flag error is one line (`mpox-screen run`'s usage alone is 30), with where to look."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_commands(sub, commands: dict[str, tuple[str, str]], argv: list[str]) -> None:
    """Subcommands from a `name -> (module, one-line help)` table. Only the command being run is
    imported (its module's `add_arguments(parser)` and `run(args)`, its docstring as the
    description), so `--help` stays fast and works without the heavy extras."""
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in commands.items():
        if name != wanted:
            sub.add_parser(name, help=help_text)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:  # the kit's install has the device extras only
            print(
                f"{sub._prog_prefix} {name}: error: needs the Python package {e.name!r}, which "
                f"this install lacks (pip install {e.name}, or the project with its extras)",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        p = sub.add_parser(name, help=help_text, description=module.__doc__ or help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)


def command_line(
    prog: str, description: str, commands: dict[str, tuple[str, str]], argv: list[str]
) -> argparse.ArgumentParser:
    """The parser of a command with subcommands from `commands` (see `add_commands`)."""
    parser = Parser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_commands(sub, commands, argv)
    return parser


def main(
    parser: argparse.ArgumentParser,
    argv: list[str],
    errors: Iterable[tuple[type[BaseException], Callable[[BaseException], str | None]]] = (),
) -> int:
    """Parse and run the subcommand: a `KitError` (and what `errors` turns into a message) is one
    line and exit 2, Ctrl-C 130, output piped into `head` a quiet 0."""
    from device import KitError, one_line

    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    prefix = f"{parser.prog}: error:"
    try:
        return int(args._run(args) or 0)
    except KitError as e:
        print(f"{prefix} {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        logging.getLogger(parser.prog).info("interrupted")
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except tuple(kind for kind, _ in errors) as e:  # type: ignore[misc]
        message = next(say(e) for kind, say in errors if isinstance(e, kind))
        if message is None:
            raise
        print(f"{prefix} {message}", file=sys.stderr)
        return 2
