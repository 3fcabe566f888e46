"""`mpox-train COMMAND`: a registry of subcommands, one module each under
`train_host/commands/`, imported only when used (as `mpox-bench`). User errors print one line and
exit 2."""

from __future__ import annotations

import argparse
import logging
import sys

from device.options import command_line
from device.options import main as run_command
from train_host import __version__

# what a device-only install lacks: a clear hint instead of a chained traceback
TRAIN_MODULES = {"torch", "torchvision", "torchmetrics", "sklearn", "tqdm", "PIL", "captum"}
COMMANDS: dict[str, tuple[str, str]] = {  # name -> (module, one-line help)
    "fit": ("train_host.commands.fit", "train one model on a grouped train/val/test split"),
    "cv": ("train_host.commands.cv", "grouped stratified k-fold cross-validation"),
    "evaluate": ("train_host.commands.evaluate", "evaluate a checkpoint on a labelled folder"),
    "export": (
        "train_host.commands.export",
        "write a verified ONNX + TFLite (fp32, int8) bundle from a checkpoint",
    ),
    "shift-test": (
        "train_host.commands.shift_test",
        "AUC under strong synthetic camera shifts, for one or more checkpoints",
    ),
    "collection-shift": (
        "train_host.commands.collection_shift",
        "the collection-shift protocol: kit framing and other collections, per model",
    ),
    "calibrate": (
        "train_host.commands.calibrate",
        "temperature scaling and the threshold on validation photos and their kit crops",
    ),
    "gate": (
        "train_host.commands.gate",
        "fit a bundle's cannot-judge gate on every collection, judge it leaving each out",
    ),
    "models": ("train_host.commands.models", "list registered models with parameters and MACs"),
    "explain": (
        "train_host.commands.explain",
        "Grad-CAM, Integrated Gradients and LIME panels, deletion scores, bundle agreement",
    ),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = command_line(
        "mpox-train",
        "Train and evaluate Mpox screening models on folders of labelled photos.",
        COMMANDS,
        argv,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _missing(exc: BaseException) -> str | None:
    """A device-only install running a host command: a hint instead of a chained traceback."""
    if getattr(exc, "name", None) not in TRAIN_MODULES:
        return None
    return (
        f"{exc.name} is not installed: install the train extra "  # type: ignore[attr-defined]
        '(pip install -e ".[train,export]")'
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("mpox-train", "train_host", "device"):  # not the exporters' chatty INFO
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        return run_command(build_parser(argv), argv, [(ModuleNotFoundError, _missing)])
    finally:
        distributed = sys.modules.get("train_host.distributed")  # only if a command used it
        if distributed is not None:
            distributed.teardown()


if __name__ == "__main__":
    sys.exit(main())
