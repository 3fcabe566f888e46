"""Knowledge distillation into the student, the way the literature says it works.

Plain short logit distillation gave nothing here (docs/design.md). Following Beyer et al. 2022 ("a
good teacher is patient and consistent"): teacher and student see the *same* strongly augmented
view, mixup / cutmix turns each labelled image into many new views (function matching: the
teacher's output is the target, so mixed images need no label), schedules are long; and, after
Zagoruyko & Komodakis 2017, the student's attention map (channel mean of squared activations of
its last feature map) is pulled towards the teacher's, which also makes the kit's heat-map follow
the teacher's. Several teachers form an ensemble: the target is the mean of their softened
outputs, the attention map the mean of theirs (each teacher sees the view at its own size).
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
    teachers: tuple[Path, ...]
    temperature: float = 2.0
    kd_weight: float = 1.0  # KL to the teacher's softened output
    ce_weight: float = 0.0  # cross-entropy to the (mixed) labels; 0 = pure function matching
    attention_weight: float = 1.0  # attention-map transfer from the last feature maps
    mix: float = 1.0  # probability that a batch is mixed (half mixup, half cutmix)

    def validate(self) -> None:
        if not self.teachers:
            raise UserError("distillation needs at least one --teacher")
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


@dataclass
class Teacher:
    model: Classifier
    spec: PreprocessSpec

    def __call__(self, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, last feature map) of a [0, 1] view, resized to the teacher's own size."""
        if self.spec.size != view.shape[-1]:
            view = F.interpolate(view, size=self.spec.size, mode="bilinear", antialias=True)
        feat = self.model.features(normalise(view, self.spec))
        return self.model.fc(torch.flatten(self.model.pool(feat), 1)).float(), feat


def load_teacher(path: Path, k: int, device) -> Teacher:
    model, ckpt = checkpoint.load_model(path)
    if len(ckpt["class_names"]) != k:
        raise UserError(f"teacher {path} has classes {ckpt['class_names']}, the student has {k}")
    # channels_last like the student: the teacher's forward is the largest share of a
    # distillation step on CPU (about 40 %), and this cuts it by about a third
    model = model.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
    return Teacher(model, checkpoint.preprocess_spec(ckpt))


class Distiller:
    """Loss for one batch of [0, 1] views at the largest model's size (see `train_transform`)."""

    def __init__(self, cfg: DistillConfig, student_spec: PreprocessSpec, k: int, device):
        cfg.validate()
        self.cfg, self.student_spec = cfg, student_spec
        self.teachers = [load_teacher(t, k, device) for t in cfg.teachers]
        self.mixer = v2.RandomChoice([v2.MixUp(num_classes=k), v2.CutMix(num_classes=k)])
        self.k = k

    @property
    def view_size(self) -> int:
        return max(self.student_spec.size, *(t.spec.size for t in self.teachers))

    def inputs(self, view: torch.Tensor, labels: torch.Tensor):
        """One mixed view -> (student input, the mixed [0, 1] view, soft labels)."""
        if torch.rand(()) < self.cfg.mix:
            view, soft = self.mixer(view, labels)
        else:
            soft = F.one_hot(labels, self.k).float()
        s_in = view
        if self.student_spec.size != view.shape[-1]:
            s_in = F.interpolate(view, size=self.student_spec.size, mode="bilinear", antialias=True)
        s_in = normalise(s_in, self.student_spec).contiguous(memory_format=torch.channels_last)
        return s_in, view, soft

    def targets(self, view: torch.Tensor, size: tuple[int, int]):
        """The ensemble's softened output and attention map (one teacher: its own)."""
        temp, probs, maps = self.cfg.temperature, [], []
        for teacher in self.teachers:
            logits, feat = teacher(view)
            probs.append(F.softmax(logits / temp, 1))
            maps.append(attention(feat, size))
        return torch.stack(probs).mean(0), F.normalize(torch.stack(maps).mean(0), dim=1)

    def loss(self, net: nn.Module, view: torch.Tensor, labels: torch.Tensor, amp) -> torch.Tensor:
        s_in, view, soft = self.inputs(view, labels)
        device = view.device.type
        with torch.autocast(device, dtype=amp or torch.float32, enabled=amp is not None):
            s_logits, s_feat = net(s_in)
            with torch.no_grad():
                t_probs, t_att = self.targets(view, s_feat.shape[-2:])
        s_logits, cfg, temp = s_logits.float(), self.cfg, self.cfg.temperature
        loss = s_logits.new_zeros(())
        if cfg.kd_weight:
            kd = F.kl_div(F.log_softmax(s_logits / temp, 1), t_probs.float(), reduction="batchmean")
            loss = loss + cfg.kd_weight * kd * temp * temp
        if cfg.ce_weight:
            loss = loss + cfg.ce_weight * torch.sum(-soft * F.log_softmax(s_logits, 1), 1).mean()
        if cfg.attention_weight:
            at = (attention(s_feat, s_feat.shape[-2:]) - t_att.float()).pow(2).sum(1).mean()
            loss = loss + cfg.attention_weight * at
        return loss
