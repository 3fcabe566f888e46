"""The linear probe of LP-FT: fit the head on frozen pretrained features before fine-tuning.

Fine-tuning from a random head distorts pretrained features early (Kumar et al., ICLR 2022,
"Fine-Tuning can Distort Pretrained Features"); fitting the head first as a logistic regression
on frozen features, then fine-tuning gently, keeps what ImageNet features carry outside MSID.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn
from tqdm import tqdm

from train_host.models import Classifier


def freeze_batchnorm(model: nn.Module) -> None:
    """BatchNorm layers in eval mode (running statistics kept) and their affine weights fixed."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


@torch.no_grad()
def pooled_features(model: Classifier, batches) -> tuple[np.ndarray, np.ndarray]:
    """(GAP features, labels) over an iterable of (x, y) batches, model in eval mode."""
    model.eval()
    feats, labels = [], []
    for x, y in tqdm(batches, desc="linear probe: features", leave=False):
        feats.append(torch.flatten(model.pool(model.backbone(x)), 1).float().numpy())
        labels.append(np.asarray(y))
    return np.concatenate(feats), np.concatenate(labels)


def fit_head(model: Classifier, feats: np.ndarray, labels: np.ndarray, c: float = 0.1) -> float:
    """Class-balanced logistic regression on standardised features, folded into model.fc.
    Returns the training accuracy of the probe."""
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mu) / sd
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit(z, labels)
    coef, bias = lr.coef_ / sd, lr.intercept_ - (lr.coef_ * (mu / sd)).sum(1)
    if coef.shape[0] == 1:  # binary: logits (-s/2, s/2) give softmax = sigmoid(s)
        coef, bias = np.concatenate([-coef, coef]) / 2, np.concatenate([-bias, bias]) / 2
    model.fc.weight.copy_(torch.as_tensor(coef, dtype=torch.float32))
    model.fc.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return float(lr.score(z, labels))


def linear_probe(model: Classifier, loader, views: int) -> float:
    """`views` augmented passes over the training loader, then `fit_head`."""
    parts = [pooled_features(model, loader) for _ in range(views)]
    feats = np.concatenate([f for f, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    with torch.no_grad():
        return fit_head(model, feats, labels)
