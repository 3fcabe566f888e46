"""Command-line flags made from a dataclass, so an option is written once: its default, type,
choices and help live on the field (`metadata`), and both the parser and the record come from it.
`mpox-screen run` (Config), `mpox-screen classify` (ClassifyOptions) and `mpox-train fit | cv`
(TrainConfig) use it. `add_commands` is the lazy subcommand table of `mpox-train` and
`mpox-bench`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str, "Path": Path}


def whole_number(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in lo..hi, else a one-line error."""

    def parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{v!r} is not a whole number") from None
        if n < lo or (hi is not None and n > hi):
            limit = f"{lo}..{hi}" if hi else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"must be {limit}")
        return n

    parse.__name__ = "whole number"
    return parse


def option(help: str, *, choices=(), type=None, metavar=None, group=None) -> dict:
    """A field's metadata: its flag's help, and optionally choices, a parsing function, a
    metavar and an argument group."""
    return {
        "help": help,
        "choices": tuple(choices),
        "type": type,
        "metavar": metavar,
        "group": group,
    }


def kind(f: Field) -> str:
    """The field's type name without `| None` ("int", "list[str]", "bool", ...)."""
    name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return name.replace(" | None", "").replace("None | ", "")


def default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def add_flags(parser, cls, *, overrides=False, type_for=None, sections=None) -> None:
    """One flag per field with `help` metadata. `overrides`: every default is None, so only
    flags given override a config file (the help then says the field's default), and booleans
    are --x / --no-x (as is a boolean field whose default is None). `type_for(name)`: a
    parsing function that also checks ranges and choices (then argparse gets no `choices`).
    `sections`: group name -> field names; the help lists the flags by group, in that order."""
    groups: dict[str, Any] = {}
    where = {name: group for group, names in (sections or {}).items() for name in names}
    order = list(sections or {})
    listed = sorted(
        fields(cls), key=lambda f: order.index(where[f.name]) if f.name in where else -1
    )
    for f in listed:
        meta = f.metadata
        if "help" not in meta:
            continue
        target, group = parser, where.get(f.name) or meta.get("group")
        if group:
            target = groups.get(group) or parser.add_argument_group(group)
            groups[group] = target
        flag, k, help = "--" + f.name.replace("_", "-"), kind(f), meta["help"]
        if overrides:
            help += f" (default: {default(f)!r})"
        if k == "bool":
            if overrides or default(f) is None:  # unset: the value comes from elsewhere
                action = argparse.BooleanOptionalAction
                target.add_argument(flag, dest=f.name, action=action, default=None, help=help)
            elif default(f):
                flag = "--no-" + f.name.replace("_", "-")
                target.add_argument(flag, dest=f.name, action="store_false", help=help)
            else:
                target.add_argument(flag, dest=f.name, action="store_true", help=help)
            continue
        kw: dict[str, Any] = {"dest": f.name, "help": help, "metavar": meta.get("metavar")}
        if k.startswith("list["):
            kw |= {"action": "append", "type": TYPES[k[5:-1]], "default": None if overrides else []}
        else:
            kw["default"] = None if overrides else default(f)
            kw["type"] = (type_for and type_for(f.name)) or meta.get("type") or TYPES[k]
            choices = meta.get("choices")
            if choices and type_for:
                kw["metavar"] = kw["metavar"] or "|".join(map(str, choices))
            elif choices:
                kw["choices"] = list(choices)
        target.add_argument(flag, **kw)


def from_args(cls, args: argparse.Namespace, **given):
    """The record from the parsed flags (fields the parser has), plus `given`."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names} | given)


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
