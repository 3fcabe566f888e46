"""One PNG per image: the square the model saw, then every attribution blended over it with the
kit's own overlay (`device.live.overlay.heat_overlay`), the decision and its probability on top."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from device.live.overlay import heat_overlay
from train_host.preprocess import center_square

DISPLAY = 224  # px per tile


def display_view(image_rgb: np.ndarray, size: int = DISPLAY) -> np.ndarray:
    """The centre square the model sees, at display resolution."""
    return cv2.resize(center_square(image_rgb), (size, size), interpolation=cv2.INTER_AREA)


def to_unit(name: str, attribution: np.ndarray) -> np.ndarray:
    """Positive evidence scaled to [0, 1]. Integrated Gradients is per pixel and speckled, so it
    is smoothed a little and scaled at its 99th percentile rather than its maximum."""
    a = np.maximum(attribution.astype(np.float32), 0.0)
    if name == "ig":
        a = cv2.GaussianBlur(a, (0, 0), sigmaX=max(1.0, a.shape[0] / 64))
        top = float(np.percentile(a, 99))
    else:
        top = float(a.max())
    return np.clip(a / top, 0, 1) if top > 0 else a


def tile(view_rgb: np.ndarray, name: str, attribution: np.ndarray, segments=None) -> np.ndarray:
    bgr = cv2.cvtColor(view_rgb, cv2.COLOR_RGB2BGR)
    rgb = cv2.cvtColor(heat_overlay(bgr, to_unit(name, attribution)), cv2.COLOR_BGR2RGB)
    if segments is not None:
        from skimage.segmentation import mark_boundaries

        rows = np.arange(rgb.shape[0]) * segments.shape[0] // rgb.shape[0]
        cols = np.arange(rgb.shape[1]) * segments.shape[1] // rgb.shape[1]
        seg = segments[rows[:, None], cols[None, :]]  # nearest-neighbour upscale
        rgb = np.uint8(mark_boundaries(rgb, seg, color=(1, 1, 1), mode="inner") * 255)
    return rgb


def title_line(name: str, label: str, prob: float, true: str | None) -> tuple[str, str]:
    """(suptitle, colour): red when the true class is known and differs."""
    text = f"{name}: {label} (P = {prob:.2f})"
    if true is None:
        return text, "black"
    return f"{text}; true class: {true}", ("black" if true == label else "red")


def write_panel(
    path: Path,
    view_rgb: np.ndarray,
    maps: dict[str, np.ndarray],
    titles: dict[str, str],
    heading: tuple[str, str],
    segments: np.ndarray | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 1 + len(maps)
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.75), dpi=90, squeeze=False)
    axes = axes[0]
    axes[0].imshow(view_rgb)
    axes[0].set_title("image (model's crop)", fontsize=8)
    for ax, (name, m) in zip(axes[1:], maps.items(), strict=True):
        ax.imshow(tile(view_rgb, name, m, segments if name == "lime" else None))
        ax.set_title(titles[name], fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(heading[0], fontsize=9, color=heading[1])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    # a 256-colour palette keeps a panel near 100 KB instead of 300-400 KB, with no visible loss
    Image.open(buf).convert("RGB").quantize(256).save(path, optimize=True)
