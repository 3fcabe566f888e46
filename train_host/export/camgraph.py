"""The exported graph: logits plus the class activation map, computed in the graph.

With a GAP -> linear head, Grad-CAM's channel weights are the constant W[c, k] / (h * w), so
Grad-CAM for class c is sum_k W[c, k] / (h * w) * A_k (before its ReLU; design.md). A 1x1 conv with
those weights emits it for every class at once; a conv quantizes per channel in ONNX Runtime and
LiteRT alike. Summed over h and w, the map plus the bias gives the logit, which the tests use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from train_host.models import Classifier

OUTPUT_NAMES = ("logits", "cam")


class CamExport(nn.Module):
    """(image) -> (logits [1, C], cam [1, C, h, w]) for a registry `Classifier` in eval mode."""

    def __init__(self, model: Classifier, feature_hw: tuple[int, int]):
        super().__init__()
        self.model = model.eval()
        h, w = feature_hw
        weight = model.fc.weight.detach() / float(h * w)
        self.register_buffer("cam_weight", weight[:, :, None, None].clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.model.features(x)
        logits = self.model.fc(torch.flatten(self.model.pool(feat), 1))
        return logits, F.conv2d(feat, self.cam_weight)


def wrap(model: Classifier, input_size: int) -> CamExport:
    with torch.no_grad():
        feat = model.eval().features(torch.zeros(1, 3, input_size, input_size))
    return CamExport(model, (feat.shape[2], feat.shape[3])).eval()
