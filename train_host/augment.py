"""Online training augmentation (torchvision transforms v2): the paper's list, scaled by one
`strength` knob, plus optional CLAHE. Evaluation never goes through here: it uses
`train_host.preprocess`, the same function the device mirrors."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.transforms import v2

from train_host.preprocess import PreprocessSpec


class RandomCLAHE(v2.Transform):
    """Contrast-limited adaptive histogram equalisation on the L channel (OpenCV's CLAHE)."""

    def __init__(self, p: float = 0.25, clip_limit: float = 2.0, tiles: int = 8):
        super().__init__()
        self.p, self.clip_limit, self.tiles = p, clip_limit, tiles

    def transform(self, inpt, params):
        if not isinstance(inpt, torch.Tensor) or inpt.dtype != torch.uint8:
            return inpt
        if torch.rand(()) >= self.p:
            return inpt
        lab = cv2.cvtColor(inpt.permute(1, 2, 0).numpy(), cv2.COLOR_RGB2LAB)
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=(self.tiles, self.tiles))
        lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
        return torch.from_numpy(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)).permute(2, 0, 1)


def train_transform(spec: PreprocessSpec, strength: float = 1.0, clahe: bool = False) -> v2.Compose:
    """uint8 CHW tensor -> normalised float tensor of spec.size. strength 0 = resize only."""
    s = float(strength)
    ops: list[v2.Transform] = [
        v2.RandomResizedCrop(spec.size, scale=(max(0.25, 1 - 0.45 * s), 1.0), antialias=True)
        if s > 0
        else v2.Resize((spec.size, spec.size), antialias=True)
    ]
    if s > 0:
        ops += [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomAffine(degrees=30 * s, translate=(0.1 * s, 0.1 * s), shear=10 * s),
            v2.ColorJitter(brightness=0.3 * s, contrast=0.3 * s, saturation=0.2 * s, hue=0.02 * s),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5 * s))], p=0.2),
            v2.RandomAdjustSharpness(1 + s, p=0.2),
        ]
    if clahe:
        ops.append(RandomCLAHE())
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if s > 0:
        ops.append(v2.RandomApply([v2.GaussianNoise(sigma=0.03 * s)], p=0.2))
    ops.append(v2.Normalize(list(spec.mean), list(spec.std)))
    return v2.Compose(ops)
