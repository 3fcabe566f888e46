"""The verification gate: every exported file must agree with the fp32 PyTorch model on held-out
images, or the export fails naming the file and the number. Files run through the device's own
preprocessing and runtimes, so the gate checks exactly what the kit will execute."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from device.core.preprocess import preprocess as device_preprocess
from device.core.runtimes import open_runtime
from device.core.screener import softmax
from train_host import UserError
from train_host.models.camgraph import CamExport
from train_host.preprocess import PreprocessSpec, preprocess


@dataclass(frozen=True)
class Limits:
    agreement: float = 0.99
    auc_drop: float = 0.01
    cam_pearson: dict = field(default_factory=lambda: {"fp32": 0.99, "int8": 0.90})  # by precision
    rank_corr: float = 0.95
    # binary bundles: the kit's decision and P(mpox) are what a user sees, not top-1 near P = 0.5.
    # A flip within `band` of the threshold is int8 noise bounded by the P error limits; a flip
    # of a firm decision (further from it) is a real failure. The decision limit holds on the
    # whole gate set and on the other collections pooled (where the kit is used, not MSID);
    # 0.99 is the aim, not reached: 2.5 % of the look-alike photos lie within 0.01 of the
    # default's threshold (docs/training.md, "int8 off MSID")
    decision_agreement: float = 0.98
    firm_decision_agreement: float = 0.995
    band: float = 0.05
    mean_prob_error: float = 0.03
    p99_prob_error: float = 0.15
    # "cannot judge": the file refuses the same photos as the fp32 model. As with the decision,
    # a flip next to the limit (fp32 score within a factor `ood_band` of it) is int8 noise; a
    # flip of a photo far from it is a failure.
    ood_agreement: float = 0.90
    ood_firm_agreement: float = 0.95
    ood_band: float = 1.25

    def cam_floor(self, precision: str) -> float:
        return self.cam_pearson[precision]


@dataclass
class Reference:
    """fp32 PyTorch outputs on the held-out images, and captum Grad-CAM of the top class."""

    labels: np.ndarray  # 1 = positive class
    probs: np.ndarray  # [N, C]
    gradcam: np.ndarray  # [N, h, w] for the top-1 class
    ood_scores: np.ndarray  # [N] "cannot judge" scores of the fp32 graph

    @property
    def top1(self) -> np.ndarray:
        return self.probs.argmax(1)


def reference(model: CamExport, images, labels, spec: PreprocessSpec, ood_model) -> Reference:
    from captum.attr import LayerGradCam

    net = model.model
    gradcam = LayerGradCam(net, net.backbone)
    probs, cams, feats = [], [], []
    for img in tqdm(images, desc="reference (torch + captum)", leave=False):
        x = torch.from_numpy(preprocess(img, spec))[None]
        with torch.no_grad():
            p = torch.softmax(net(x), 1)[0]
            feats.append(model(x)[2][0].numpy())
        cam = gradcam.attribute(x, target=int(p.argmax()))
        probs.append(p.numpy())
        cams.append(cam[0, 0].detach().numpy())
    scores = ood_model.scores(np.stack(feats))
    return Reference(np.asarray(labels), np.stack(probs), np.stack(cams), scores)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float(np.allclose(a, b))


@dataclass(frozen=True)
class FileRun:
    logits: np.ndarray  # [N, C]
    cams: np.ndarray  # [N, C, h, w]
    features: np.ndarray | None  # [N, D], files with a features output


def run_file(path: Path, images, input_spec: dict, layout: str) -> FileRun:
    rt = open_runtime(path, threads=2)
    outs = [
        rt.run(device_preprocess(img, input_spec, layout))
        for img in tqdm(images, desc=f"gate {path.name}", leave=False)
    ]
    feats = None if outs[0].features is None else np.stack([o.features for o in outs])
    return FileRun(np.stack([o.logits for o in outs]), np.stack([o.cam for o in outs]), feats)


def ood_metrics(
    ref_scores: np.ndarray, scores: np.ndarray, limit: float, band: float = Limits.ood_band
) -> dict:
    """How far a file's "cannot judge" decisions follow the fp32 model's: overall, and on the
    photos whose fp32 score is not within `band` (a factor) of the limit."""
    same = (scores <= limit) == (ref_scores <= limit)
    firm = np.abs(np.log(np.maximum(ref_scores, 1e-12) / limit)) >= np.log(band)
    return {
        "ood_agreement": float(same.mean()),
        "ood_firm_agreement": float(same[firm].mean()) if firm.any() else 1.0,
        "ood_rank_corr": float(spearmanr(scores, ref_scores).statistic),
    }


def saturated(logits: np.ndarray) -> float:
    """Share of images whose logit sits on a value shared at a column's min or max: the mark of an
    output quantizer clipping confident images to one value."""
    hits = np.zeros(len(logits), bool)
    for col in logits.T:
        for edge in (col.max(), col.min()):
            at = np.isclose(col, edge, rtol=0, atol=1e-6)
            if at.sum() > 1:
                hits |= at
    return float(hits.mean())


def file_metrics(
    ref: Reference,
    logits: np.ndarray,
    cams: np.ndarray,
    positive: int,
    threshold: float,
    band: float = Limits.band,
    names: list[str] | None = None,
) -> dict:
    """`names`: each image's collection (the first the training one): the decision's agreement
    is also given per collection and over the others pooled."""
    probs = softmax(logits.astype(np.float64))
    decided = probs[:, positive] >= threshold
    same = decided == (ref.probs[:, positive] >= threshold)
    firm = np.abs(ref.probs[:, positive] - threshold) >= band
    top = ref.top1
    cam_r = [pearson(cams[i, c], ref.gradcam[i]) for i, c in enumerate(top)]
    auc_torch = float(roc_auc_score(ref.labels, ref.probs[:, positive]))
    auc = float(roc_auc_score(ref.labels, probs[:, positive]))
    return {
        "auc": auc,
        "auc_torch": auc_torch,
        "auc_drop": auc_torch - auc,
        "agreement": float((probs.argmax(1) == top).mean()),
        "decision_agreement": float(same.mean()),
        "firm_decision_agreement": float(same[firm].mean()) if firm.any() else 1.0,
        "cam_pearson": float(np.mean(cam_r)),
        "cam_pearson_min": float(np.min(cam_r)),
        "rank_corr": float(spearmanr(probs[:, positive], ref.probs[:, positive]).statistic),
        "saturated": saturated(logits),
        "max_abs_prob_diff": float(np.abs(probs - ref.probs).max()),
        "mean_abs_prob_diff": float(np.abs(probs[:, positive] - ref.probs[:, positive]).mean()),
        "p99_abs_prob_diff": float(
            np.quantile(np.abs(probs[:, positive] - ref.probs[:, positive]), 0.99)
        ),
        "n": len(top),
    } | (by_collection(same, names) if names else {})


def by_collection(same: np.ndarray, names: list[str]) -> dict:
    """The kit's decision agreement per collection and over the other collections pooled:
    MSID's held-out split alone hid int8 flips on other photos."""
    names_arr = np.asarray(names)
    by = {n: float(same[names_arr == n].mean()) for n in dict.fromkeys(names)}
    other = names_arr != names[0]
    pooled = {"other_decision_agreement": float(same[other].mean())} if other.any() else {}
    return {"decision_agreement_by_collection": by} | pooled


def check(name: str, precision: str, m: dict, limits: Limits, binary: bool = False) -> None:
    """Raise naming the file and the number that broke the gate. A binary bundle is held to the
    kit's decision at its threshold and to its P(mpox) error; a multi-class one to top-1."""
    failures = []
    if binary:
        if m["decision_agreement"] < limits.decision_agreement:
            failures.append(
                f"decision agreement {m['decision_agreement']:.3f} < {limits.decision_agreement}"
            )
        other = m.get("other_decision_agreement", 1.0)
        if other < limits.decision_agreement:
            failures.append(
                f"decision agreement {other:.3f} on the other collections < "
                f"{limits.decision_agreement}"
            )
        firm = m.get("firm_decision_agreement", 1.0)
        if firm < limits.firm_decision_agreement:
            failures.append(
                f"decision agreement {firm:.3f} away from the threshold (|P - t| >= "
                f"{limits.band}) < {limits.firm_decision_agreement}"
            )
        if m.get("mean_abs_prob_diff", 0.0) > limits.mean_prob_error:
            failures.append(
                f"mean P error {m['mean_abs_prob_diff']:.3f} > {limits.mean_prob_error}"
            )
        if m.get("p99_abs_prob_diff", 0.0) > limits.p99_prob_error:
            failures.append(f"p99 P error {m['p99_abs_prob_diff']:.3f} > {limits.p99_prob_error}")
    elif m["agreement"] < limits.agreement:
        failures.append(f"top-1 agreement {m['agreement']:.3f} < {limits.agreement}")
    if m["auc_drop"] > limits.auc_drop:
        failures.append(f"AUC drop {m['auc_drop']:.4f} > {limits.auc_drop}")
    if m["cam_pearson"] < limits.cam_floor(precision):
        failures.append(f"CAM Pearson {m['cam_pearson']:.3f} < {limits.cam_floor(precision)}")
    if m["rank_corr"] < limits.rank_corr:
        failures.append(f"probability rank correlation {m['rank_corr']:.3f} < {limits.rank_corr}")
    if m["saturated"] > 0:
        failures.append(f"{m['saturated']:.1%} of images have clipped (saturated) logits")
    if m.get("ood_agreement", 1.0) < limits.ood_agreement:
        failures.append(f"cannot-judge agreement {m['ood_agreement']:.3f} < {limits.ood_agreement}")
    if m.get("ood_firm_agreement", 1.0) < limits.ood_firm_agreement:
        failures.append(
            f"cannot-judge agreement {m['ood_firm_agreement']:.3f} away from the limit "
            f"(x{limits.ood_band}) < {limits.ood_firm_agreement}"
        )
    if failures:
        raise UserError(f"export gate failed for {name}: " + "; ".join(failures))
