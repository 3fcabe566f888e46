"""Training loop: one code path for a single process and for torchrun/DDP."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from train_host import UserError, checkpoint, distributed, torchfile
from train_host.augment import train_transform
from train_host.averaging import ema_model
from train_host.data import Dataset, with_extra_negatives
from train_host.distill import Distiller, WithFeatures
from train_host.evaluate import predict
from train_host.grouping import Split
from train_host.models import create_model
from train_host.preprocess import PreprocessSpec
from train_host.probe import freeze_batchnorm, linear_probe
from train_host.train_config import TrainConfig

log = logging.getLogger(__name__)


def cpu_has_bf16() -> bool:
    """AMX or AVX512-BF16: bf16 autocast then trains MicroMPoxNet about 2.5x faster on 2 cores."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 mixed precision where the hardware runs it natively; None = plain fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda" or cpu_has_bf16():
        return torch.bfloat16
    return None


class AugmentedImages(torch.utils.data.Dataset):
    def __init__(self, data: Dataset, transform):
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        img = torch.from_numpy(self.data.images[i]).permute(2, 0, 1).contiguous()
        return self.transform(img), int(self.data.labels[i])


class BalancedSampler(Sampler[int]):
    """Class-balanced draws with replacement, sharded across DDP ranks (seeded per epoch)."""

    def __init__(self, labels: np.ndarray, seed: int, rank: int = 0, world: int = 1):
        counts = np.bincount(labels)
        self.weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
        self.num = math.ceil(len(labels) / world)
        self.seed, self.rank, self.epoch = seed, rank, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch * 104729 + self.rank)
        return iter(torch.multinomial(self.weights, self.num, True, generator=g).tolist())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Weight decay on weights only; the backbone at `backbone_lr` x lr (LP-FT fine-tunes the
    pretrained trunk gently). Frozen parameters are left out."""
    groups = []
    for backbone in (True, False):
        scale = cfg.backbone_lr if backbone else 1.0
        ps = [
            p
            for n, p in model.named_parameters()
            if p.requires_grad and n.startswith("backbone.") == backbone
        ]
        groups += [
            {"params": [p for p in ps if p.ndim > 1], "weight_decay": cfg.weight_decay},
            {"params": [p for p in ps if p.ndim <= 1], "weight_decay": 0.0},
        ]
        for g in groups[-2:]:
            g["lr_scale"] = scale
    groups = [g for g in groups if g["params"]]
    scales = [g.pop("lr_scale") for g in groups]
    groups = [{**g, "lr": cfg.lr * s} for g, s in zip(groups, scales, strict=True)]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=0.9, momentum=0.9, eps=1e-3)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def warmup_cosine(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def class_weights(labels: np.ndarray, k: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return torch.as_tensor(len(labels) / (k * np.maximum(counts, 1)), dtype=torch.float32)


@dataclass
class Trainer:
    """Fits one model on `split.train`, early-stops on validation AUC, keeps best and last."""

    cfg: TrainConfig
    data: Dataset
    split: Split
    out: Path
    resume: bool = False
    history: list[dict] = field(default_factory=list)
    distiller: Distiller | None = None

    def run(self) -> Path:
        """Train; returns the path of the best checkpoint (on the main process)."""
        self.cfg.validate()
        return self._run(distributed.setup())

    def _run(self, d: distributed.Dist) -> Path:
        cfg = self.cfg
        seed_everything(cfg.seed + d.rank)
        spec = cfg.preprocess_spec()
        train, val = self.data.subset(self.split.train), self.data.subset(self.split.val)
        train = with_extra_negatives(train, [Path(r) for r in cfg.extra_negatives])
        model, loader, opt, sched, loss_fn = self._build(train, spec, d)
        ema = ema_model(model, cfg.ema) if cfg.ema else None
        start, best, stale = (
            self._restore(model, opt, sched, ema) if self.resume else (0, -math.inf, 0)
        )
        kept = ema.module if ema else model  # what is validated and saved
        average = (lambda: ema.update_parameters(model)) if ema else (lambda: None)
        trained = WithFeatures(model) if self.distiller else model
        net = DistributedDataParallel(trained) if d.enabled else trained
        amp = autocast_dtype(cfg.precision, d.device)
        if d.main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.split.save(self.out / "split.json")
            (self.out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
        if cfg.epochs == 0:  # the linear probe alone: a logistic regression on frozen features
            self._keep_probe(model, opt, sched, val, spec, d)
        bar = tqdm(total=cfg.epochs, initial=start, desc=f"fit {cfg.model}", disable=not d.main)
        for epoch in range(start, cfg.epochs):
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            train_loss = self._epoch(
                net,
                loader,
                self.distiller or loss_fn,
                opt,
                sched,
                d.device,
                amp,
                cfg.freeze_bn,
                average,
            )
            val_auc, val_loss = self._validate(kept, val, spec, d)
            # AUC decides; a validation set with one class only falls back to its loss.
            score = val_auc if not math.isnan(val_auc) else -val_loss
            improved = score > best
            best, stale = (score, 0) if improved else (best, stale + 1)
            record = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_auc": val_auc,
                "lr": opt.param_groups[-1]["lr"],  # the head's
                "seconds": round(time.perf_counter() - t0, 2),
            }
            if d.main:
                self._record(record, model, opt, sched, best, stale, improved, spec, ema)
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}", val_auc=f"{val_auc:.3f}", best=f"{best:.3f}")
            if stale >= cfg.patience:
                log.info("early stop at epoch %d: no val AUC gain in %d epochs", epoch + 1, stale)
                break
        bar.close()
        d.barrier()
        return self.out / "best.pt"

    def _keep_probe(self, model, opt, sched, val: Dataset, spec, d) -> None:
        val_auc, val_loss = self._validate(model, val, spec, d)
        record = {"epoch": 0, "train_loss": float("nan"), "val_loss": val_loss, "val_auc": val_auc}
        if d.main:
            record |= {"lr": 0.0, "seconds": 0.0}
            self._record(record, model, opt, sched, val_auc, 0, True, spec, None)

    def _build(self, train: Dataset, spec: PreprocessSpec, d: distributed.Dist):
        """Model, loader, optimiser, warm-up + cosine schedule (stepped per batch), loss."""
        cfg, k = self.cfg, len(self.data.class_names)
        model = create_model(cfg.model, k, spec.size, cfg.weights, **cfg.model_kwargs())
        model = model.to(d.device, memory_format=torch.channels_last)
        kd = cfg.distill_config()
        self.distiller = Distiller(kd, spec, k, d.device) if kd else None
        loader = self._loader(train, spec, d)
        if cfg.linear_probe and not self.resume:
            acc = linear_probe(model, loader, cfg.linear_probe)
            log.info("linear probe on frozen features: train accuracy %.3f", acc)
        if cfg.freeze_bn:
            freeze_batchnorm(model)
        opt = build_optimizer(cfg, model)
        schedule = warmup_cosine(cfg.epochs * len(loader), cfg.warmup_epochs * len(loader))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        weight = class_weights(train.labels, k).to(d.device) if cfg.balance == "weight" else None
        loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
        return model, loader, opt, sched, loss_fn

    def _validate(self, model, val: Dataset, spec, d: distributed.Dist) -> tuple[float, float]:
        """(AUC of P(mpox), NLL) on the validation split, rank 0's values on every rank so
        all ranks stop at the same epoch (BN statistics differ slightly between ranks)."""
        probs = predict(model, val.images, spec, device=d.device)
        auc = _auc(val.binary_targets(), probs[:, self.data.positive_index])
        auc, nll = d.broadcast([auc, _nll(val.labels, probs)])
        return auc, nll

    def _loader(self, train: Dataset, spec: PreprocessSpec, d: distributed.Dist) -> DataLoader:
        cfg = self.cfg
        if self.distiller:  # [0, 1] views at the teacher's size; the distiller resizes
            transform = train_transform(
                spec,
                cfg.augment,
                cfg.clahe,
                self.distiller.view_size,
                False,
                cfg.camera_aug,
                cfg.lesion_crop,
                cfg.text_paste,
                cfg.tone_aug,
            )
        else:
            transform = train_transform(
                spec,
                cfg.augment,
                cfg.clahe,
                camera=cfg.camera_aug,
                lesion_crop=cfg.lesion_crop,
                text=cfg.text_paste,
                tone=cfg.tone_aug,
            )
        ds = AugmentedImages(train, transform)
        if cfg.balance == "sampler":
            sampler: Sampler | None = BalancedSampler(train.labels, cfg.seed, d.rank, d.world)
        elif d.enabled:
            sampler = DistributedSampler(ds, d.world, d.rank, shuffle=True, seed=cfg.seed)
        else:
            sampler = None
        g = torch.Generator().manual_seed(cfg.seed + d.rank)
        return DataLoader(
            ds,
            batch_size=cfg.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=cfg.num_workers,
            persistent_workers=cfg.num_workers > 0,
            drop_last=len(ds) // d.world > cfg.batch_size,
            generator=g,
        )

    @staticmethod
    def _epoch(
        net,
        loader,
        loss_fn,
        opt,
        sched,
        device,
        amp: torch.dtype | None,
        freeze_bn: bool = False,
        after_step=lambda: None,
    ) -> float:
        """`loss_fn`: a criterion on logits, or a `Distiller` that runs the network itself;
        `after_step` runs after each optimiser step (the weight average's update)."""
        net.train()
        if freeze_bn:
            freeze_batchnorm(net)
        total, n = 0.0, 0
        for x, y in loader:
            x = x.to(device, memory_format=torch.channels_last)
            y = y.to(device)
            if isinstance(loss_fn, Distiller):
                loss = loss_fn.loss(net, x, y, amp)
            else:
                with torch.autocast(
                    device.type, dtype=amp or torch.float32, enabled=amp is not None
                ):
                    loss = loss_fn(net(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            after_step()
            total += loss.item() * len(y)
            n += len(y)
        return total / max(n, 1)

    def _meta(self, spec: PreprocessSpec, epoch: int, val_auc: float) -> dict:
        d = distributed.setup()
        return {
            "trained_on": {"world_size": d.world, "device": str(d.device)},
            "model": self.cfg.model,
            "model_kwargs": self.cfg.model_kwargs(),
            "task": self.data.task,
            "class_names": self.data.class_names,
            "positive_class": self.data.class_names[self.data.positive_index],
            "preprocess": spec.to_dict(),
            "epoch": epoch,
            "val_auc": val_auc,
            "config": asdict(self.cfg),
            "data": data_provenance(self.data, self.split, self.cfg.extra_negatives),
        }

    def _record(self, record, model, opt, sched, best_auc, stale, improved, spec, ema) -> None:
        self.history.append(record)
        with (self.out / "history.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        if improved:
            kept = ema.module if ema else model
            checkpoint.save_model(self.out / "best.pt", kept, self._meta(spec, *_ev(record)))
        state = {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "epoch": record["epoch"],
            "best_auc": best_auc,
            "stale": stale,
            "torch_rng": torch.get_rng_state(),
            "ema": ema.state_dict() if ema else None,
        }
        torchfile.save(state, self.out / "last.pt")

    def _restore(self, model, opt, sched, ema) -> tuple[int, float, int]:
        state = torchfile.load(self.out / "last.pt", "checkpoint to resume from")
        model.load_state_dict(state["model"])
        averaged = bool(state.get("ema"))
        if averaged != (ema is not None):
            how = "with" if averaged else "without"
            raise UserError(f"{self.out}/last.pt was trained {how} --ema: resume the same way")
        if ema is not None:
            ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["torch_rng"])
        hist = self.out / "history.jsonl"
        if hist.is_file():
            lines = hist.read_text().splitlines()[: state["epoch"]]
            self.history = [json.loads(line) for line in lines]
            hist.write_text("".join(line + "\n" for line in lines))
        log.info("resumed %s at epoch %d", self.out, state["epoch"])
        return state["epoch"], state["best_auc"], state["stale"]


def _ev(record: dict) -> tuple[int, float]:
    return record["epoch"], record["val_auc"]


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if y.min() != y.max() else float("nan")


def _nll(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1)).mean())


def data_provenance(data: Dataset, split: Split, extra: Sequence[str] = ()) -> dict:
    """Where the training photos came from; `extra_negatives` names the other collections the
    model saw (the collection-shift protocol cannot score it as left out on those)."""
    names, counts = np.unique(data.source_labels, return_counts=True)
    return {
        "extra_negatives": sorted(Path(r).resolve().name for r in extra),
        "root": str(data.root),
        "dataset": data.root.name,
        "counts": {str(n): int(c) for n, c in zip(names, counts, strict=True)},
        "train": len(split.train),
        "val": len(split.val),
        "test": len(split.test),
        "groups": len(set(split.groups)),
        "split_method": split.method,
        "skipped": data.skipped,
    }
