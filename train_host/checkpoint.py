"""Checkpoint files: everything needed to rebuild, evaluate and later export a trained model."""

from __future__ import annotations

import subprocess
from pathlib import Path

from train_host import UserError, __version__, torchfile
from train_host.models import Classifier, create_model
from train_host.models.registry import without_builtin_weights
from train_host.preprocess import PreprocessSpec

FORMAT = "mpox-screen-checkpoint/1"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_model(path: Path, model: Classifier, meta: dict) -> None:
    """Weights plus the metadata evaluation and export need."""
    payload = {
        "format": FORMAT,
        "host_version": __version__,
        "git_commit": git_commit(),
        **meta,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    torchfile.save(payload, path)


def read(path: Path) -> dict:
    ckpt = torchfile.load(path, "checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not an mpox-screen checkpoint (format {FORMAT})")
    return ckpt


def load_model(path: Path) -> tuple[Classifier, dict]:
    """(model in eval mode, metadata) from a checkpoint written by `save_model`."""
    ckpt = read(path)
    model = create_model(
        ckpt["model"],
        num_classes=len(ckpt["class_names"]),
        input_size=ckpt["preprocess"]["size"],
        **{**ckpt.get("model_kwargs", {}), **without_builtin_weights(ckpt["model"])},
    )
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model.eval(), ckpt


def preprocess_spec(ckpt: dict) -> PreprocessSpec:
    return PreprocessSpec.from_dict(ckpt["preprocess"])
