"""Knowledge distillation into the student, the way the literature says it works.

Plain short logit distillation gave nothing here (docs/design.md). Following Beyer et al. 2022 ("a
good teacher is patient and consistent"): teacher and student see the *same* strongly augmented
view, mixup / cutmix turns each labelled image into many new views (function matching: the
teacher's output is the target, so mixed images need no label), schedules are long; and, after
Zagoruyko & Komodakis 2017, the student's attention map (channel mean of squared activations of
its last feature map) is pulled towards the teacher's, which also makes the kit's heat-map follow
the teacher's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from train_host import UserError, checkpoint
from train_host.models import Classifier
from train_host.preprocess import PreprocessSpec


@dataclass(frozen=True)
class DistillConfig:
    teacher: Path
    temperature: float = 2.0
    kd_weight: float = 1.0  # KL to the teacher's softened output
    ce_weight: float = 0.0  # cross-entropy to the (mixed) labels; 0 = pure function matching
    attention_weight: float = 1.0  # attention-map transfer from the last feature maps
    mix: float = 1.0  # probability that a batch is mixed (half mixup, half cutmix)

    def validate(self) -> None:
        if self.temperature <= 0:
            raise UserError("--kd-temperature must be positive")
        weights = (self.kd_weight, self.ce_weight, self.attention_weight)
        if min(weights) < 0 or sum(weights) == 0:
            raise UserError("distillation weights must be >= 0 and not all 0")
        if not 0 <= self.mix <= 1:
            raise UserError("--kd-mix must be in [0, 1]")


class WithFeatures(nn.Module):
    """(logits, last feature map) in one forward, so DDP sees every parameter used."""

    def __init__(self, model: Classifier):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.model.features(x)
        return self.model.fc(self.model.dropout(torch.flatten(self.model.pool(feat), 1))), feat


def attention(feat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Unit-norm spatial attention map, average-pooled to `size`, flattened: (B, h*w)."""
    a = F.adaptive_avg_pool2d(feat.float().pow(2).mean(1, keepdim=True), size)
    return F.normalize(a.flatten(1), dim=1)


def normalise(x: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class Distiller:
    """Loss for one batch of [0, 1] views at the teacher's size (see `train_transform`)."""

    def __init__(self, cfg: DistillConfig, student_spec: PreprocessSpec, k: int, device):
        cfg.validate()
        self.cfg, self.student_spec = cfg, student_spec
        self.teacher, ckpt = checkpoint.load_model(cfg.teacher)
        if len(ckpt["class_names"]) != k:
            raise UserError(
                f"teacher {cfg.teacher} has classes {ckpt['class_names']}, the student has {k}"
            )
        self.teacher = self.teacher.to(device).eval().requires_grad_(False)
        self.teacher_spec = checkpoint.preprocess_spec(ckpt)
        self.mixer = v2.RandomChoice([v2.MixUp(num_classes=k), v2.CutMix(num_classes=k)])
        self.k = k

    @property
    def view_size(self) -> int:
        return max(self.teacher_spec.size, self.student_spec.size)

    def inputs(self, view: torch.Tensor, labels: torch.Tensor):
        """One mixed view -> (student input, teacher input, soft labels)."""
        if torch.rand(()) < self.cfg.mix:
            view, soft = self.mixer(view, labels)
        else:
            soft = F.one_hot(labels, self.k).float()
        t_in = view
        if self.teacher_spec.size != view.shape[-1]:
            t_in = F.interpolate(view, size=self.teacher_spec.size, mode="bilinear", antialias=True)
        s_in = view
        if self.student_spec.size != view.shape[-1]:
            s_in = F.interpolate(view, size=self.student_spec.size, mode="bilinear", antialias=True)
        s_in = normalise(s_in, self.student_spec).contiguous(memory_format=torch.channels_last)
        return s_in, normalise(t_in, self.teacher_spec), soft

    def loss(self, net: nn.Module, view: torch.Tensor, labels: torch.Tensor, amp) -> torch.Tensor:
        s_in, t_in, soft = self.inputs(view, labels)
        device = view.device.type
        with torch.autocast(device, dtype=amp or torch.float32, enabled=amp is not None):
            with torch.no_grad():
                t_feat = self.teacher.features(t_in)
                t_logits = self.teacher.fc(torch.flatten(self.teacher.pool(t_feat), 1)).float()
            s_logits, s_feat = net(s_in)
        s_logits, cfg, temp = s_logits.float(), self.cfg, self.cfg.temperature
        loss = s_logits.new_zeros(())
        if cfg.kd_weight:
            kd = F.kl_div(
                F.log_softmax(s_logits / temp, 1),
                F.softmax(t_logits / temp, 1),
                reduction="batchmean",
            )
            loss = loss + cfg.kd_weight * kd * temp * temp
        if cfg.ce_weight:
            loss = loss + cfg.ce_weight * torch.sum(-soft * F.log_softmax(s_logits, 1), 1).mean()
        if cfg.attention_weight:
            size = s_feat.shape[-2:]
            at = (attention(s_feat, size) - attention(t_feat, size)).pow(2).sum(1).mean()
            loss = loss + cfg.attention_weight * at
        return loss
