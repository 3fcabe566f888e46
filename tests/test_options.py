"""Flags made from dataclass fields (device/options.py): the same field gives the flag, its
default, its check and the record, for the kit's commands and mpox-train's."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

import pytest

from device.options import add_flags, from_args, option


@dataclass
class Example:
    name: str = field(default="a", metadata=option("a name", choices=("a", "b")))
    count: int = field(default=2, metadata=option("how many", lo=1, hi=9))
    ratio: float | None = field(default=None, metadata=option("optional", group="tuning"))
    fast: bool = field(default=False, metadata=option("turn on"))
    gate: bool = field(default=True, metadata=option("turn off"))
    extra: list[str] = field(default_factory=list, metadata=option("repeat", metavar="DIR"))
    hidden: dict = field(default_factory=dict)  # no help: no flag


def parse(*argv: str, **kw) -> argparse.Namespace:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_flags(p, Example, **kw)
    return p.parse_args(list(argv))


def test_defaults_and_values_come_from_the_fields():
    assert from_args(Example, parse()) == Example()
    got = from_args(Example, parse("--name", "b", "--count", "9", "--ratio", "0.5", "--fast",
                                   "--no-gate", "--extra", "x", "--extra", "y"))  # fmt: skip
    assert got == Example("b", 9, 0.5, True, False, ["x", "y"])


def test_checks_come_from_the_fields():
    with pytest.raises(argparse.ArgumentError, match="is not one of"):
        parse("--name", "c")
    with pytest.raises(argparse.ArgumentError, match="10 is above 9"):
        parse("--count", "10")
    with pytest.raises(argparse.ArgumentError, match="not a whole number"):
        parse("--count", "two")
    with pytest.raises(SystemExit):  # a field without help has no flag
        parse("--hidden", "x")


def test_overrides_only_sets_what_was_given():
    """`run`'s mode: every default None, booleans --x / --no-x, so a config file keeps the rest."""
    args = parse("--gate", overrides=True)
    assert args.gate is True and all(
        getattr(args, f.name) is None for f in fields(Example) if f.name not in ("gate", "hidden")
    )
    assert parse("--no-fast", overrides=True).fast is False


def test_groups_and_the_train_config_flags():
    p = argparse.ArgumentParser()
    add_flags(p, Example)
    assert "tuning" in {g.title for g in p._action_groups}
    from train_host.commands import add_train_args
    from train_host.train_config import TrainConfig

    q = argparse.ArgumentParser()
    add_train_args(q)
    args = q.parse_args(["--model", "micrompoxnet_s2", "--kd-mix", "0.5", "--freeze-bn"])
    cfg = from_args(TrainConfig, args)
    assert (cfg.model, cfg.kd_mix, cfg.freeze_bn, cfg.epochs) == ("micrompoxnet_s2", 0.5, True, 60)
    with pytest.raises(SystemExit):
        q.parse_args(["--optimizer", "lbfgs"])  # choices from the same tuple validate() checks
