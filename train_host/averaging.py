"""Weight averaging: an exponential moving average (EMA) of the weights during training.

Averaged weights sit in a flatter region of the loss than the last iterate, which is where
robustness to a shifted input distribution has been reported to come from (Izmailov et al. 2018,
SWA; Wortsman et al. 2022, weight-space ensembles). PyTorch's `AveragedModel` keeps the copy; the
decay warms up as in TensorFlow's ExponentialMovingAverage (min(decay, (1 + n) / (10 + n))), so
the random initial weights do not linger in the average of a short run. BatchNorm statistics are
averaged too (`use_buffers`), so the average is usable as it is, without a pass to recompute them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_model(model: nn.Module, decay: float) -> AveragedModel:
    def average(avg: torch.Tensor, new: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return avg * d + new * (1.0 - d)

    return AveragedModel(model, avg_fn=average, use_buffers=True)
