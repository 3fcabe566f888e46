"""`mpox-screen run`: the kit: camera -> verdict and heat-map on screen, until stopped. Every key
of the config file is also a flag here, grouped by the section it belongs to."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from device.config import SYSTEM_CONFIG, flag_values, load
from device.config.keys import flags
from device.options import add_flags


def add_arguments(p) -> None:
    p.add_argument(
        "--config", type=Path, default=None, help=f"TOML file (default {SYSTEM_CONFIG} if present)"
    )
    add_flags(p, flags(), overrides=True)


def run(args: argparse.Namespace) -> int:
    from device.live.daemon import Daemon

    cfg = load(args.config, flag_values(args), notify=True)
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
