"""Parameter and multiply-accumulate counts (torch's own FlopCounterMode: 1 MAC = 2 FLOPs)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from train_host.models import create_model, get_spec, model_names
from train_host.models.registry import without_builtin_weights


def profile(name: str, num_classes: int = 2, input_size: int | None = None) -> dict:
    spec = get_spec(name)
    size = input_size or spec.default_input_size
    model = create_model(name, num_classes, size, **without_builtin_weights(name)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    return {
        "name": name,
        "input_size": size,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": counter.get_total_flops() // 2,
        "pretrained": spec.pretrained,
        "description": spec.description,
    }


def profile_all(num_classes: int = 2) -> list[dict]:
    return [profile(n, num_classes) for n in model_names()]
