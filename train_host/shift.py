"""The shift test: held-out MSID images under strong synthetic camera and collection shifts.

MSID is one web-scraped collection; the kit meets other phones, light and clinics. These fixed,
strong shifts (stronger than the training augmentation's random ones) stand in for that until a
labelled external set exists. A model that only fits MSID's look loses AUC here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from train_host.checkpoint import preprocess_spec
from train_host.data import Dataset
from train_host.evaluate import predict


def _gain(rgb_gain: tuple[float, float, float]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda img: np.clip(img * np.asarray(rgb_gain, np.float32), 0, 255).astype(np.uint8)


def _gamma(gamma: float, gain: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    lut = np.clip(((np.arange(256) / 255.0) ** gamma) * gain * 255.0, 0, 255).astype(np.uint8)
    return lambda img: lut[img]


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def f(img: np.ndarray) -> np.ndarray:
        _, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()

    return f


def _blur(fraction: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda img: cv2.GaussianBlur(img, (0, 0), fraction * min(img.shape[:2]))


def _low_res(factor: int) -> Callable[[np.ndarray], np.ndarray]:
    def f(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        small = cv2.resize(
            img, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA
        )
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    return f


def _zoom_in(keep: float) -> Callable[[np.ndarray], np.ndarray]:
    def f(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        ch, cw = int(h * keep), int(w * keep)
        return img[(h - ch) // 2 : (h + ch) // 2, (w - cw) // 2 : (w + cw) // 2]

    return f


def _zoom_out(scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """The lesion smaller in frame, surrounded by a plain grey background."""

    def f(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        small = cv2.resize(img, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        out = np.full_like(img, 128)
        y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
        out[y : y + small.shape[0], x : x + small.shape[1]] = small
        return out

    return f


def _noise(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    def f(img: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(img.size)  # fixed per image: the test is deterministic
        return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)

    return f


SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "warm light (WB 1.3/1.0/0.7)": _gain((1.3, 1.0, 0.7)),
    "cool light (WB 0.75/1.0/1.3)": _gain((0.75, 1.0, 1.3)),
    "under-exposed (gamma 1.8, x0.7)": _gamma(1.8, 0.7),
    "over-exposed (gamma 0.6, x1.2)": _gamma(0.6, 1.2),
    "JPEG quality 10": _jpeg(10),
    "defocus (sigma 1.5 % of side)": _blur(0.015),
    "low resolution (1/6)": _low_res(6),
    "zoom in (central 55 %)": _zoom_in(0.55),
    "zoom out (lesion at 55 %)": _zoom_out(0.55),
    "sensor noise (sigma 20)": _noise(20.0),
}


def shift_scores(model, ckpt: dict, data: Dataset, progress: bool = True) -> dict[str, np.ndarray]:
    """P(mpox) per image, clean and under each shift (condition name -> scores)."""
    spec, pos = preprocess_spec(ckpt), data.positive_index
    scores = {}
    for name, shift in tqdm(
        [("clean", None), *SHIFTS.items()], desc="shift test", disable=not progress
    ):
        images = data.images if shift is None else [shift(img) for img in data.images]
        scores[name] = predict(model, images, spec)[:, pos]
    return scores


def summarise(y: np.ndarray, scores: dict[str, np.ndarray]) -> dict:
    """AUC per condition; `mean_shift_auc` (over the shifts, not clean) is the headline."""
    aucs = {name: float(roc_auc_score(y, s)) for name, s in scores.items()}
    shifted = [v for k, v in aucs.items() if k != "clean"]
    return {
        "n": len(y),
        "auc": aucs,
        "mean_shift_auc": float(np.mean(shifted)),
        "worst_shift_auc": float(np.min(shifted)),
    }


def shift_test(model, ckpt: dict, data: Dataset, progress: bool = True) -> dict:
    return summarise(data.binary_targets(), shift_scores(model, ckpt, data, progress))


def write(out: Path, results: dict[str, dict]) -> None:
    """shift_test.json and shift_test.png for one or more models (name -> shift_test result)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "shift_test.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "shift_test.png", "ROC AUC, P(mpox), held-out images")


def plot(results: dict[str, dict], path: Path, xlabel: str) -> None:
    """Grouped bars: AUC per condition, one colour per model (name -> {auc, mean_shift_auc})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = list(next(iter(results.values()))["auc"])
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(conditions) + 1.5))
    height = 0.8 / len(results)
    for i, (name, r) in enumerate(results.items()):
        ys = np.arange(len(conditions)) + i * height
        ax.barh(
            ys,
            [r["auc"][c] for c in conditions],
            height,
            label=f"{name} (mean shifted {r['mean_shift_auc']:.3f})",
        )
    ax.set_yticks(np.arange(len(conditions)) + 0.4 - height / 2, conditions)
    ax.invert_yaxis()
    ax.set_xlim(0.5, 1.0)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
