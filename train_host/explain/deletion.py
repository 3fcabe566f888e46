"""Faithfulness by deletion (Petsiuk et al. 2018, "RISE"): cut the image into a grid of patches,
remove the patches a method ranks highest first (replace them with a heavy blur of the image, or
its mean colour), and follow the probability of the explained class. A faithful map makes it fall
fast: the area under the curve (probability against the fraction removed) is small. The same
curve for random patch orders is the baseline every method must beat."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from train_host import UserError

FILLS = ("blur", "mean")
RANDOM = "random"


def patch_ids(size: int, grid: int) -> np.ndarray:
    """S x S array of patch indices 0 .. grid*grid - 1 (row-major)."""
    cell = np.minimum(np.arange(size) * grid // size, grid - 1)
    return cell[:, None] * grid + cell[None, :]


def rank_patches(attribution: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Patch indices, most attributed (highest mean) first; ties keep reading order."""
    n = int(ids.max()) + 1
    sums = np.bincount(ids.ravel(), weights=attribution.ravel().astype(np.float64), minlength=n)
    means = sums / np.bincount(ids.ravel(), minlength=n)
    return np.argsort(-means, kind="stable")


def filler(x: torch.Tensor, fill: str) -> torch.Tensor:
    """What a removed patch shows: the image blurred (sigma = side / 10), or its mean colour."""
    if fill not in FILLS:
        raise UserError(f"unknown deletion fill {fill!r}; choose from {', '.join(FILLS)}")
    img = x[0].numpy()
    if fill == "mean":
        return torch.from_numpy(np.broadcast_to(img.mean((1, 2), keepdims=True), img.shape).copy())
    hwc = np.ascontiguousarray(img.transpose(1, 2, 0))
    blurred = cv2.GaussianBlur(hwc, (0, 0), sigmaX=img.shape[-1] / 10.0)
    return torch.from_numpy(np.ascontiguousarray(blurred.transpose(2, 0, 1)))


class Deletion:
    def __init__(
        self,
        model: torch.nn.Module,
        size: int,
        grid: int = 8,
        steps: int = 16,
        fill: str = "blur",
        random_orders: int = 3,
        batch: int = 16,
    ):
        if grid < 2 or steps < 2 or random_orders < 1:
            raise UserError("--deletion-grid >= 2, --deletion-steps >= 2, --random-orders >= 1")
        filler(torch.zeros(1, 3, 4, 4), fill)  # validates the fill name early
        self.model, self.grid, self.fill, self.batch = model.eval(), grid, fill, batch
        self.steps = min(steps, grid * grid)
        self.random_orders = random_orders
        self.ids = patch_ids(size, grid)

    def curve(self, x: torch.Tensor, target: int, order: np.ndarray, fill: torch.Tensor):
        """P(target) after removing the first 0, n/steps, ..., n patches of `order`."""
        n = len(order)
        ids = torch.from_numpy(self.ids)
        frames = []
        for k in range(self.steps + 1):
            removed = torch.from_numpy(np.asarray(order[: round(k * n / self.steps)], np.int64))
            mask = torch.isin(ids, removed)
            frames.append(torch.where(mask, fill, x[0]))
        batch = torch.stack(frames)
        with torch.no_grad():
            probs = [
                torch.softmax(self.model(batch[i : i + self.batch]), 1)[:, target]
                for i in range(0, len(batch), self.batch)
            ]
        return torch.cat(probs).double().numpy()

    def run(self, x: torch.Tensor, target: int, maps: dict[str, np.ndarray], seed: int) -> dict:
        """name -> curve for every map, plus `random` (mean of `random_orders` random orders)."""
        fill = filler(x, self.fill)
        out = {n: self.curve(x, target, rank_patches(m, self.ids), fill) for n, m in maps.items()}
        rng = np.random.default_rng(seed)
        orders = [rng.permutation(self.grid * self.grid) for _ in range(self.random_orders)]
        randoms = [self.curve(x, target, o, fill) for o in orders]
        out[RANDOM] = np.mean(randoms, axis=0)
        return out


def area(curve: np.ndarray) -> float:
    """Area under P(class) over the fraction removed, 0..1 (trapezoid rule)."""
    return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))


def summarise(curves: list[dict[str, np.ndarray]]) -> dict:
    """Per method: mean and sd of the per-image AUCs, the mean curve, and the share of images on
    which the method's AUC is below the random orders' (its win rate)."""
    if not curves:
        return {}
    names = list(curves[0])
    aucs = {n: np.array([area(c[n]) for c in curves]) for n in names}
    out = {}
    for n in names:
        entry = {
            "auc_mean": float(aucs[n].mean()),
            "auc_sd": float(aucs[n].std(ddof=1)) if len(curves) > 1 else 0.0,
            "curve_mean": [round(float(v), 5) for v in np.mean([c[n] for c in curves], 0)],
        }
        if n != RANDOM:
            entry["beats_random"] = float((aucs[n] < aucs[RANDOM]).mean())
        out[n] = entry
    return out


def plot(summary: dict, titles: dict[str, str], path, n_images: int, fill: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=100)
    for name, s in summary.items():
        curve = np.asarray(s["curve_mean"])
        frac = np.linspace(0, 1, len(curve))
        style = dict(color="grey", linestyle="--") if name == RANDOM else {}
        label = titles.get(name, "random order")
        ax.plot(frac, curve, label=f"{label}: AUC {s['auc_mean']:.3f}", **style)
    ax.set_xlabel(f"fraction of the image removed (patches, most attributed first; fill: {fill})")
    ax.set_ylabel("P(explained class), mean")
    ax.set_title(f"Deletion curves, {n_images} image(s): lower = more faithful")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
