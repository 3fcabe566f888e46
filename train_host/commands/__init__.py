"""`mpox-train`'s commands, one module each (`add_arguments(parser)`, `run(args)`), imported only
when used; the options they share are here. Training options are the fields of TrainConfig."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from device.options import add_flags, from_args
from train_host import UserError
from train_host.train_config import TrainConfig

log = logging.getLogger("mpox-train")


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of class folders (default: $MPOX_DATA or ../shared/data/msid)",
    )
    p.add_argument(
        "--task",
        choices=["binary", "multiclass"],
        default="binary",
        help="binary: mpox vs all other folders; multiclass: one class per folder",
    )
    p.add_argument("--limit-per-class", type=int, default=None, help="use at most N images/class")


def paths_arg(p, flag: str, help: str, metavar: str = "DIR", unset_is_none: bool = False) -> None:
    """A repeatable folder option (`--collection A --collection B`): a list, [] when not given,
    or None with `unset_is_none` (the command then picks its own default)."""
    default = None if unset_is_none else []
    p.add_argument(flag, type=Path, action="append", default=default, metavar=metavar, help=help)


def add_train_args(p: argparse.ArgumentParser) -> None:
    """TrainConfig's fields as flags, and the two that are not part of a model's recipe."""
    add_flags(p, TrainConfig, group="model and training")
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")


def load_data(args):
    from train_host.data import default_data_dir, load_dataset

    root = args.data or default_data_dir()
    if args.limit_per_class is not None and args.limit_per_class < 1:
        raise UserError("--limit-per-class must be at least 1")
    data = load_dataset(root, args.task, args.limit_per_class)
    log.info("loaded %d images from %s (%s: %s)", len(data), root, data.task, data.class_names)
    return data


def train_config(args) -> TrainConfig:
    cfg = from_args(TrainConfig, args)
    cfg.validate()
    return cfg
