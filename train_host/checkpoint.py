"""Checkpoint files: everything needed to rebuild, evaluate and later export a trained model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

from train_host import UserError, __version__
from train_host.models import Classifier, create_model
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
    """Weights plus metadata; writes to a temp file first so a crash never leaves half a file."""
    payload = {
        "format": FORMAT,
        "host_version": __version__,
        "git_commit": git_commit(),
        **meta,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    atomic_save(payload, path)


def atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def read(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from exc
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
        **{**ckpt.get("model_kwargs", {}), **_no_pretrained(ckpt["model"])},
    )
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model.eval(), ckpt


def _no_pretrained(name: str) -> dict:
    """Weights come from the checkpoint; skip re-reading the packaged ImageNet file."""
    return {"pretrained": False} if name == "efficientnet_lite0" else {}


def preprocess_spec(ckpt: dict) -> PreprocessSpec:
    return PreprocessSpec.from_dict(ckpt["preprocess"])
