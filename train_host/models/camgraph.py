"""The exported graph: logits, the class activation map and the OOD features, all in the graph.

With a GAP -> linear head, Grad-CAM's channel weights are the constant W[c, k] / (h * w), so
Grad-CAM for class c is sum_k W[c, k] / (h * w) * A_k (before its ReLU; docs/design.md). A 1x1
conv with those weights emits it for every class at once; a conv quantizes per channel in ONNX
Runtime and LiteRT alike. Summed over h and w, the map plus the bias gives the logit, which the
tests use.

`features` (bundles with an `ood` manifest field): the pooled activations of a mid-level stage and
of the head's map, standardised with the training photos' statistics so that one output scale
suits every channel; `device.core.ood` turns them into the "cannot judge" score. With a lesion
check (`train_host.models.lesion_check`) the ImageNet branch's pooled features follow them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from train_host.models import Classifier

OUTPUT_NAMES = ("logits", "cam")


def mid_stage(model: Classifier, input_size: int) -> int | None:
    """The last backbone stage at 1/4 of the input resolution (textures, colours), or None when
    the backbone is not a plain sequence of stages (then only the head's map is used)."""
    if not isinstance(model.backbone, nn.Sequential):
        return None
    x, found = torch.zeros(1, 3, input_size, input_size), None
    with torch.no_grad():
        for i, stage in enumerate(model.backbone):
            x = stage(x)
            if x.shape[-1] == input_size // 4:
                found = i
    return found


class CamExport(nn.Module):
    """(image) -> (logits [1, C], cam [1, C, h, w][, features [1, D]]) for a registry
    `Classifier` in eval mode."""

    def __init__(
        self,
        model: Classifier,
        feature_hw: tuple[int, int],
        mid: int | None = None,
        lesion: nn.Module | None = None,
    ):
        super().__init__()
        self.model = model.eval()
        self.lesion = lesion
        h, w = feature_hw
        weight = model.fc.weight.detach() / float(h * w)
        self.register_buffer("cam_weight", weight[:, :, None, None].clone())
        self.mid = mid
        self.with_features = False

    @property
    def output_names(self) -> tuple[str, ...]:
        return OUTPUT_NAMES + (("features",) if self.with_features else ())

    def standardise(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Emit `features` as (raw - mean) / std from now on."""
        self.register_buffer("feat_scale", (1.0 / std).float()[None])
        self.register_buffer("feat_shift", (-mean / std).float()[None])
        self.with_features = True

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the head's feature map, raw OOD features: pooled mid stage, pooled map[, lesion
        check's ImageNet features])."""
        feat, parts = self._parts(x)
        return feat, torch.cat(parts, 1)

    def _parts(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        image, parts = x, []
        if self.mid is None:
            x = self.model.features(x)
        else:
            for i, stage in enumerate(self.model.backbone):
                x = stage(x)
                if i == self.mid:
                    parts.append(x.mean((2, 3)))
        parts.append(torch.flatten(self.model.pool(x), 1))
        if self.lesion is not None:
            parts.append(self.lesion(image))
        return x, parts

    def forward(self, x: torch.Tensor):
        feat, parts = self._parts(x)
        pooled = parts[-2] if self.lesion is not None else parts[-1]
        logits, cam = self.model.fc(pooled), F.conv2d(feat, self.cam_weight)
        if not self.with_features:
            return logits, cam
        return logits, cam, torch.cat(parts, 1) * self.feat_scale + self.feat_shift


def wrap(
    model: Classifier, input_size: int, ood: bool = False, lesion: nn.Module | None = None
) -> CamExport:
    """`ood`: also compute the features of a mid-level stage (call `standardise` before export);
    `lesion`: and the lesion check's branch after them."""
    with torch.no_grad():
        feat = model.eval().features(torch.zeros(1, 3, input_size, input_size))
    mid = mid_stage(model, input_size) if ood else None
    return CamExport(model, (feat.shape[2], feat.shape[3]), mid, lesion).eval()
