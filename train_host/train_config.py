"""What `mpox-train fit` and `cv` train: one dataclass whose fields are also the flags (their
help, choices and groups in the metadata, `device.options.add_flags`). Light to import: no torch
until a method needs the model registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from device.options import option
from train_host import UserError

OPTIMIZERS = ("adamw", "sgd", "rmsprop")
BALANCING = ("weight", "sampler", "none")
PRECISIONS = ("auto", "fp32", "bf16")
COLOUR_CONSTANCY = ("none", "shades_of_grey")
KD = "distillation (with --teacher)"


@dataclass
class TrainConfig:
    model: str = field(
        default="micrompoxnet", metadata=option("registered model (see `mpox-train models`)")
    )
    input_size: int | None = field(
        default=None, metadata=option("input side in px (model default)")
    )
    width: float | None = field(default=None, metadata=option("micrompoxnet channel multiplier"))
    dropout: float | None = field(default=None, metadata=option("dropout before the linear head"))
    weights: str | None = field(
        default=None, metadata=option("local backbone state dict (no downloads)")
    )
    epochs: int = field(
        default=60, metadata=option("training epochs (0 with --linear-probe: the probe alone)")
    )
    batch_size: int = field(default=32, metadata=option("images per batch"))
    optimizer: str = field(default="adamw", metadata=option("optimizer", choices=OPTIMIZERS))
    lr: float = field(default=2e-3, metadata=option("peak learning rate"))
    weight_decay: float = field(default=0.05, metadata=option("weight decay"))
    warmup_epochs: int = field(default=3, metadata=option("linear warm-up epochs"))
    label_smoothing: float = field(default=0.1, metadata=option("label smoothing"))
    balance: str = field(
        default="weight",
        metadata=option("class-weighted loss, balanced sampling, or neither", choices=BALANCING),
    )
    augment: float = field(default=1.0, metadata=option("augmentation strength (0 = none)"))
    clahe: bool = field(default=False, metadata=option("add random CLAHE to the augmentation"))
    camera_aug: float = field(  # train_host.augment.camera_ops
        default=0.0,
        metadata=option(
            "camera/clinic augmentation strength: white balance, exposure, JPEG, blur, zoom-out"
        ),
    )
    colour_constancy: str = field(
        default="none",
        metadata=option(
            "colour-constancy preprocessing (goes into the bundle; the device applies it too)",
            choices=COLOUR_CONSTANCY,
        ),
    )
    patience: int = field(default=15, metadata=option("early stop after N epochs w/o gain"))
    seed: int = field(default=0, metadata=option("random seed (split, initialisation, order)"))
    num_workers: int = field(default=1, metadata=option("data-loader worker processes"))
    precision: str = field(
        default="auto",
        metadata=option(
            "training arithmetic; auto = bf16 autocast where the CPU/GPU has it",
            choices=PRECISIONS,
        ),
    )
    teacher: list[str] = field(  # train_host.distill
        default_factory=list,
        metadata=option(
            "teacher checkpoint: distil into --model (repeat: an ensemble, the mean of the "
            "teachers' outputs and attention maps)",
            metavar="CKPT",
            group=KD,
        ),
    )
    kd_temperature: float = field(default=2.0, metadata=option("softmax temperature", group=KD))
    kd_weight: float = field(default=1.0, metadata=option("KL to the teacher's output", group=KD))
    kd_ce_weight: float = field(
        default=0.0, metadata=option("cross-entropy to (mixed) labels", group=KD)
    )
    kd_attention_weight: float = field(
        default=1.0, metadata=option("attention-map transfer", group=KD)
    )
    kd_mix: float = field(default=1.0, metadata=option("share of mixup/cutmix batches", group=KD))
    lesion_crop: float = field(  # train_host.kitframe
        default=0.0,
        metadata=option(
            "probability of a kit-framing crop: a tight square around a lesion-like spot"
        ),
    )
    text_paste: float = field(
        default=0.0,
        metadata=option(
            "probability of pasted caption/watermark text on any class (text carries no label)"
        ),
    )
    tone_aug: float = field(
        default=0.0,
        metadata=option("probability of a skin-tone change (lighter/darker, tint) on any class"),
    )
    extra_negatives: list[str] = field(
        default_factory=list,
        metadata=option(
            "a negatives-only collection added to the training part only (repeat); the "
            "collection-shift protocol then scores the collections left out",
            metavar="DIR",
        ),
    )
    linear_probe: int = field(
        default=0,
        metadata=option(
            "LP-FT: fit the head on frozen features of VIEWS augmented passes, then fine-tune",
            metavar="VIEWS",
        ),
    )
    backbone_lr: float = field(
        default=1.0, metadata=option("backbone learning rate, a fraction of --lr")
    )
    freeze_bn: bool = field(
        default=False, metadata=option("keep the pretrained BatchNorm statistics")
    )
    ema: float = field(  # train_host.averaging
        default=0.0,
        metadata=option(
            "weight averaging: decay of an exponential moving average of the weights, updated "
            "every step (e.g. 0.998; 0 = off); validation, early stopping and the checkpoint "
            "use the average",
            metavar="DECAY",
        ),
    )
    extra: dict = field(default_factory=dict)  # not a flag: settings a test or script adds

    def validate(self) -> None:
        from train_host.models import get_spec

        get_spec(self.model)
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; choose {', '.join(OPTIMIZERS)}")
        if self.balance not in BALANCING:
            raise UserError(f"unknown balancing {self.balance!r}; choose {', '.join(BALANCING)}")
        if self.batch_size < 1:
            raise UserError("--batch-size must be at least 1")
        if self.epochs < (0 if self.linear_probe else 1):
            raise UserError("--epochs must be at least 1 (0 only with --linear-probe)")
        if self.lr <= 0:
            raise UserError("--lr must be positive")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}; choose {', '.join(PRECISIONS)}")
        if self.teacher:
            self.distill_config().validate()
        if self.colour_constancy not in COLOUR_CONSTANCY:
            raise UserError(f"--colour-constancy: choose {', '.join(COLOUR_CONSTANCY)}")
        for name in ("lesion_crop", "text_paste", "tone_aug", "backbone_lr"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 1]")
        if self.linear_probe < 0:
            raise UserError("--linear-probe must be 0 or more")
        if not 0 <= self.ema < 1:
            raise UserError("--ema must be in [0, 1)")

    def model_kwargs(self) -> dict:
        kw = {k: getattr(self, k) for k in ("width", "dropout") if getattr(self, k) is not None}
        if "width" in kw and self.model != "micrompoxnet":
            raise UserError("--width applies to micrompoxnet only")
        return kw

    def distill_config(self):
        from train_host.distill import DistillConfig

        if not self.teacher:
            return None
        return DistillConfig(
            tuple(Path(t) for t in self.teacher),
            self.kd_temperature,
            self.kd_weight,
            self.kd_ce_weight,
            self.kd_attention_weight,
            self.kd_mix,
        )

    def preprocess_spec(self):
        from train_host.models import get_spec
        from train_host.models.efficientnet_lite import LITE0_MEAN, LITE0_STD
        from train_host.preprocess import PreprocessSpec

        size = self.input_size or get_spec(self.model).default_input_size
        cc = self.colour_constancy
        if self.model.startswith("efficientnet_lite"):  # TF-style [-1, 1] weights
            return PreprocessSpec(size, mean=LITE0_MEAN, std=LITE0_STD, colour_constancy=cc)
        return PreprocessSpec(size, colour_constancy=cc)
