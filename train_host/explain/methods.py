"""The attribution methods, all from captum: LayerGradCam (at one or more layers), Integrated
Gradients and Lime on scikit-image SLIC superpixels. Every map comes back at the model's input
resolution, oriented so that higher means "more evidence for the explained class"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from train_host import UserError

METHODS = ("gradcam", "ig", "lime")
LAST_STAGE = "backbone"  # the feature map the bundle's in-graph CAM is computed from


def parse_methods(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """'gradcam,ig' -> ['gradcam', 'ig']; an unknown or empty list is a UserError."""
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip().lower() for n in names if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise UserError(
            f"unknown method(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {','.join(METHODS)}"
        )
    return list(dict.fromkeys(names))


def output_sides(model: nn.Module, input_size: int) -> dict[str, int]:
    """Spatial side of every backbone module's output for one input, in execution order."""
    sides: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if name == LAST_STAGE or name.startswith(LAST_STAGE + "."):

            def hook(_m, _i, out, name=name):
                if isinstance(out, torch.Tensor) and out.dim() == 4:
                    sides[name] = int(out.shape[-1])

            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
    return sides


def default_layers(model: nn.Module, input_size: int) -> list[str]:
    """The last stage (`backbone`: what the bundle's CAM shows) and the paper's second map: the
    last, shallowest backbone module whose output is 1/8 of the input (16x16 at 128 px)."""
    sides = output_sides(model, input_size)
    wanted = [n for n, s in sides.items() if s == input_size // 8 and n != LAST_STAGE]
    if not wanted or sides.get(LAST_STAGE) == input_size // 8:
        return [LAST_STAGE]
    depth = min(n.count(".") for n in wanted)
    return [LAST_STAGE, [n for n in wanted if n.count(".") == depth][-1]]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or not name:
        some = [n for n in modules if n.count(".") <= 1 and n][:12]
        raise UserError(f"no layer {name!r} in the model; e.g. {', '.join(some)}")
    return modules[name]


@dataclass
class Maps:
    """One image's attributions: name -> HxW map at input size; the raw last-stage Grad-CAM
    (before ReLU and upsampling, as the bundle computes it) and the LIME superpixels."""

    maps: dict[str, np.ndarray]
    titles: dict[str, str]
    cam_raw: np.ndarray | None = None
    segments: np.ndarray | None = None


class Explainer:
    def __init__(
        self,
        model: nn.Module,
        input_size: int,
        methods: list[str],
        layers: list[str] | None = None,
        ig_steps: int = 32,
        lime_samples: int = 150,
        superpixels: int = 50,
        batch: int = 16,
    ):
        # captum's documented surrogate models live in captum._utils.models (see Lime's docs)
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import IntegratedGradients, LayerGradCam, Lime

        if ig_steps < 2 or lime_samples < 4 or superpixels < 2:
            raise UserError("--ig-steps >= 2, --lime-samples >= 4 and --superpixels >= 2 please")
        self.model = model.eval()
        self.size = input_size
        self.methods = methods
        self.ig_steps, self.lime_samples = ig_steps, lime_samples
        self.superpixels, self.batch = superpixels, batch
        self.layers = list(layers) if layers else default_layers(model, input_size)
        sides = output_sides(model, input_size)
        self.gradcams = {n: LayerGradCam(model, resolve_layer(model, n)) for n in self.layers}
        self.sides = {n: sides.get(n, 0) for n in self.layers}
        self.last_stage = LayerGradCam(model, resolve_layer(model, LAST_STAGE))
        self.ig = IntegratedGradients(model)
        self.lime = Lime(self.probs, interpretable_model=SkLearnRidge(alpha=1.0))

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), 1)

    def predict(self, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.probs(x)[0].double().numpy()

    def names(self) -> list[str]:
        out = []
        for m in self.methods:
            out += [f"gradcam:{n}" for n in self.layers] if m == "gradcam" else [m]
        return out

    def title(self, name: str) -> str:
        if name.startswith("gradcam:"):
            layer = name.split(":", 1)[1]
            s = self.sides[layer]
            where = "last stage" if layer == LAST_STAGE else layer
            return f"Grad-CAM, {where} ({s}x{s})"
        if name == "ig":
            return f"Integrated Gradients ({self.ig_steps} steps)"
        return f"LIME ({self.lime_samples} samples)"

    def gradcam(self, x: torch.Tensor, target: int, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """(ReLU'd map upsampled to the input, raw map at the layer's resolution)."""
        from captum.attr import LayerAttribution

        raw = self.gradcams[layer].attribute(x, target=target).detach()
        up = LayerAttribution.interpolate(torch.relu(raw), (self.size, self.size), "bilinear")
        return up[0, 0].numpy(), raw[0, 0].numpy()

    def last_stage_cam(self, x: torch.Tensor, target: int) -> np.ndarray:
        """captum Grad-CAM at the last stage, before ReLU: what the bundle's `cam` output holds."""
        return self.last_stage.attribute(x, target=target).detach()[0, 0].numpy()

    def integrated_gradients(self, x: torch.Tensor, target: int) -> np.ndarray:
        """Summed over colour channels; baseline the all-zero tensor (the mean colour)."""
        attr = self.ig.attribute(
            x,
            baselines=torch.zeros_like(x),
            target=target,
            n_steps=self.ig_steps,
            internal_batch_size=self.batch,
        )
        return attr.detach()[0].sum(0).numpy()

    def segments(self, view_rgb: np.ndarray) -> np.ndarray:
        """SLIC superpixels (light smoothing first, so sensor noise does not shatter them); a
        square grid instead when SLIC merges a flat or pure-noise image into one segment."""
        from skimage.segmentation import slic

        from train_host.explain.deletion import patch_ids

        seg = slic(view_rgb, n_segments=self.superpixels, compactness=10, sigma=1, start_label=0)
        if len(np.unique(seg)) < 2:
            seg = patch_ids(view_rgb.shape[0], max(2, round(np.sqrt(self.superpixels))))
        return seg

    def lime_map(self, x: torch.Tensor, target: int, segments: np.ndarray) -> np.ndarray:
        """Ridge weights of the superpixels (present vs the mean colour) on P(target)."""
        mask = torch.from_numpy(segments.astype(np.int64))[None, None]
        attr = self.lime.attribute(
            x,
            baselines=0.0,
            target=target,
            feature_mask=mask,
            n_samples=self.lime_samples,
            perturbations_per_eval=self.batch,
        )
        return attr.detach()[0, 0].numpy()

    def explain(self, x: torch.Tensor, view_rgb: np.ndarray, target: int) -> Maps:
        """Every selected method for one preprocessed image [1, 3, S, S] and its S x S view."""
        out = Maps({}, {})
        for name in self.names():
            if name.startswith("gradcam:"):
                layer = name.split(":", 1)[1]
                out.maps[name], raw = self.gradcam(x, target, layer)
                if layer == LAST_STAGE:
                    out.cam_raw = raw
            elif name == "ig":
                out.maps[name] = self.integrated_gradients(x, target)
            else:
                out.segments = self.segments(view_rgb)
                out.maps[name] = self.lime_map(x, target, out.segments)
            out.titles[name] = self.title(name)
        if out.cam_raw is None:
            out.cam_raw = self.last_stage_cam(x, target)
        return out
