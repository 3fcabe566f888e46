"""The lesion check's eyes: EfficientNet-Lite0's ImageNet features of the kit's own input, in the
exported graph beside the classifier (`ood` version 3, `device/core/ood.py`).

The classifier's features know skin and lesions only, so photographs of objects land among
lesion photos; ImageNet features know objects. The branch reads the tensor the classifier reads
(the kit's normalisation undone into Lite0's [-1, 1]), at 96 px (bilinear in the graph): 71 M
multiply-adds against the default classifier's 454 M, where 128 px would cost 125 M for no better
probe (issue 28 probes: held-out objects refused 95-99 % at either size). Only the pooled 1280
features leave the branch; the linear probe on them lives in the gate's `.npz`, refitted without
re-export.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from train_host.models.efficientnet_lite import LITE0_MEAN, LITE0_STD, lite0_imagenet

SIZE = 96
WIDTH = 1280  # Lite0's pooled features


class LesionCheckBranch(nn.Module):
    """(kit-normalised image [n, 3, s, s]) -> [n, 1280] pooled ImageNet features."""

    def __init__(self, mean, std, pretrained: bool = True):
        super().__init__()
        self.net = lite0_imagenet(SIZE, pretrained).eval()
        kit_mean, kit_std = torch.tensor(mean).float(), torch.tensor(std).float()
        lite_mean, lite_std = torch.tensor(LITE0_MEAN), torch.tensor(LITE0_STD)
        # x01 = x * kit_std + kit_mean; y = (x01 - lite_mean) / lite_std, one multiply-add
        self.register_buffer("scale", (kit_std / lite_std)[None, :, None, None])
        self.register_buffer("shift", ((kit_mean - lite_mean) / lite_std)[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale + self.shift
        if x.shape[-1] != SIZE:
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return self.net.extract_features(x).mean((2, 3))
