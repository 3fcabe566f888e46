"""What the "cannot judge" fit and its judgement read from a model: per image the standardised
features, P(mpox) and the square's skin share. From an exported bundle's int8 ONNX file, as the
kit runs it (`mpox-train gate --bundle`), or from a checkpoint's fp32 graph before export
(`mpox-train gate --checkpoint`)."""

from __future__ import annotations

import numpy as np
import torch

from device.core.bundle import Bundle
from device.core.screener import Screener, softmax
from device.core.skin import skin_fraction
from train_host import ood
from train_host.models.camgraph import CamExport
from train_host.preprocess import PreprocessSpec

Read = tuple[np.ndarray, np.ndarray, np.ndarray]  # features [n, d], P(mpox) [n], skin share [n]


class Reader:
    name: str
    sizes: tuple[int, ...]  # the distance's layers
    lesion_check: bool  # the lesion check's ImageNet features follow them
    threshold: float  # "Mpox likely" at or above

    def read(self, images: list[np.ndarray]) -> Read:
        raise NotImplementedError

    def features(self, images: list[np.ndarray]) -> np.ndarray:
        return self.read(images)[0]


class BundleReader(Reader):
    def __init__(self, bundle: Bundle):
        m = bundle.manifest
        self.bundle, self.name, self.threshold = bundle, m.name, m.threshold
        self.screener = Screener(bundle, bundle.select("onnx", "int8"), threads=2)
        self.sizes = tuple(m.document["ood"]["layers"])
        self.lesion_check = "lesion_check" in m.document["ood"]
        self.positive = list(m.classes).index(m.positive_class)

    def read(self, images: list[np.ndarray]) -> Read:
        z, p = [], []
        for im in images:
            out = self.screener.runtime.run(self.screener.tensor(im))
            z.append(np.asarray(out.features, np.float64).reshape(-1))
            p.append(softmax(out.logits.astype(np.float64)).reshape(-1)[self.positive])
        return np.stack(z), np.asarray(p), np.asarray([skin_fraction(im) for im in images])


class GraphReader(Reader):
    """`net` standardised with the training photos' scale (the graph export will write)."""

    def __init__(self, name: str, net: CamExport, spec: PreprocessSpec, ckpt: dict):
        self.name, self.net, self.spec = name, net, spec
        self.threshold = float(ckpt["threshold"]["value"])
        self.positive = list(ckpt["class_names"]).index("mpox")
        self.sizes = ood.layer_sizes(net, int(net.feat_scale.shape[-1]))
        self.lesion_check = net.lesion is not None

    def read(self, images: list[np.ndarray]) -> Read:
        z, p = [], []
        with torch.no_grad():
            for x in ood.batches(images, self.spec):
                logits, _, feats = self.net(x)
                z.append(feats.numpy().astype(np.float64))
                p.append(torch.softmax(logits.double(), 1)[:, self.positive].numpy())
        return (
            np.concatenate(z),
            np.concatenate(p),
            np.asarray([skin_fraction(im) for im in images]),
        )
