"""Online training augmentation (torchvision transforms v2): the paper's list, scaled by one
`strength` knob, plus optional CLAHE, camera/clinic shifts and colour constancy. Evaluation never
goes through here: it uses `train_host.preprocess`, the device's own function."""

from __future__ import annotations

import math
import string

import cv2
import numpy as np
import torch
from torchvision.transforms import v2

from device.core.preprocess import shades_of_grey
from train_host.kitframe import lesion_peaks, square_at
from train_host.preprocess import PreprocessSpec


class _Uint8Transform(v2.Transform):
    """Applied with probability `p` to uint8 image tensors only (masks, labels pass through)."""

    def __init__(self, p: float = 1.0):
        super().__init__()
        self.p = p

    def transform(self, inpt, params):
        if not isinstance(inpt, torch.Tensor) or inpt.dtype != torch.uint8:
            return inpt
        return self.apply(inpt) if torch.rand(()) < self.p else inpt

    def apply(self, img: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _hwc(img: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(img.permute(1, 2, 0).numpy())


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)


class RandomCLAHE(_Uint8Transform):
    """Contrast-limited adaptive histogram equalisation on the L channel (OpenCV's CLAHE)."""

    def __init__(self, p: float = 0.25, clip_limit: float = 2.0, tiles: int = 8):
        super().__init__(p)
        self.clip_limit, self.tiles = clip_limit, tiles

    def apply(self, img):
        lab = cv2.cvtColor(_hwc(img), cv2.COLOR_RGB2LAB)
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=(self.tiles, self.tiles))
        lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
        return _chw(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


class ShadesOfGrey(_Uint8Transform):
    """The bundle's colour-constancy step, applied after the other uint8 augmentations so
    training sees what the device will feed the model."""

    def apply(self, img):
        return _chw(shades_of_grey(_hwc(img)))


class RandomWhiteBalance(_Uint8Transform):
    """Per-channel gains around 1 (green fixed), as a different light or camera would give."""

    def __init__(self, spread: float, p: float = 0.5):
        super().__init__(p)
        self.spread = spread

    def apply(self, img):
        gain = 1 + (torch.rand(3) * 2 - 1) * self.spread
        gain[1] = 1.0
        return (img.float() * gain.view(3, 1, 1)).clamp(0, 255).to(torch.uint8)


class RandomGamma(_Uint8Transform):
    """Exposure / tone-curve changes: x ** gamma with log-uniform gamma."""

    def __init__(self, max_gamma: float, p: float = 0.5):
        super().__init__(p)
        self.log_max = math.log(max_gamma)

    def apply(self, img):
        gamma = math.exp((float(torch.rand(())) * 2 - 1) * self.log_max)
        return ((img.float() / 255.0).pow(gamma) * 255.0).round().to(torch.uint8)


class RandomJPEG(_Uint8Transform):
    """JPEG re-compression at a random quality (OpenCV: torchvision's codec is deprecated)."""

    def __init__(self, quality: tuple[int, int], p: float = 0.3):
        super().__init__(p)
        self.quality = quality

    def apply(self, img):
        q = int(torch.randint(self.quality[0], self.quality[1] + 1, ()))
        _, buf = cv2.imencode(".jpg", _hwc(img)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        return _chw(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


class RandomLesionCrop(_Uint8Transform):
    """Crop a square of 25-75 % of the short side around one of the top lesion spots (jittered):
    training views that look like a kit user's framing."""

    def __init__(self, p: float = 0.5, fractions: tuple[float, float] = (0.25, 0.75)):
        super().__init__(p)
        self.fractions = fractions

    def apply(self, img):
        im = _hwc(img)
        peaks = lesion_peaks(im, k=5)
        y, x = peaks[int(torch.randint(len(peaks), ()))]
        short = min(im.shape[:2])
        lo, hi = self.fractions
        side = int(short * (lo + (hi - lo) * float(torch.rand(()))))
        jy, jx = ((torch.rand(2) - 0.5) * side * 0.5).tolist()
        return _chw(square_at(im, int(y + jy), int(x + jx), side).copy())


class RandomTone(_Uint8Transform):
    """Lighter or darker skin and another tint, for every class: in MSID most mpox photos show
    darker skin than the other classes, a shortcut that flags darker-skinned patients elsewhere.
    Scales Lab lightness around its mean and shifts a*/b* a little."""

    def __init__(self, p: float = 0.5, spread: float = 0.35):
        super().__init__(p)
        self.spread = spread

    def apply(self, img):
        lab = cv2.cvtColor(_hwc(img), cv2.COLOR_RGB2LAB).astype(np.float32)
        r = (torch.rand(4) * 2 - 1).tolist()
        light = lab[..., 0]
        target = float(light.mean()) + r[0] * 255 * self.spread * 0.6
        lab[..., 0] = (light - light.mean()) * (1 + 0.3 * r[1]) + target
        lab[..., 1] += r[2] * 8
        lab[..., 2] += r[3] * 12
        lab = np.clip(lab, 0, 255).astype(np.uint8)
        return _chw(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


_WORDS = ("gettyimages", "shutterstock", "dermnet", "alamy", "iStock", "CDC", "Fig. 2", "(c) 2022")


class RandomText(_Uint8Transform):
    """Caption / watermark-like text pasted on any class, so text is no cue to the label."""

    def __init__(self, p: float = 0.3):
        super().__init__(p)

    def apply(self, img):
        im = _hwc(img).copy()
        h, w = im.shape[:2]
        for _ in range(int(torch.randint(1, 3, ()))):
            im = self._paste(im, h, w)
        return _chw(im)

    @staticmethod
    def _paste(im: np.ndarray, h: int, w: int) -> np.ndarray:
        r = torch.rand(6).tolist()
        if r[0] < 0.5:
            text = _WORDS[int(r[1] * len(_WORDS))]
        else:
            letters = string.ascii_letters + string.digits + " "
            text = "".join(letters[int(torch.randint(len(letters), ()))] for _ in range(8))
        scale = max(0.3, min(h, w) / 300) * (0.6 + r[2])
        grey = int(255 * (r[3] > 0.5))
        org = (int(r[4] * w * 0.6), int(h * (0.1 + 0.85 * r[5])))
        layer = im.copy()
        cv2.putText(layer, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (grey,) * 3, 2, cv2.LINE_AA)
        alpha = 0.4 + 0.6 * float(torch.rand(()))
        return cv2.addWeighted(layer, alpha, im, 1 - alpha, 0)


def camera_ops(strength: float) -> list[v2.Transform]:
    """What changes between clinics' cameras: white balance, exposure, compression, focus, scale.
    Random and milder than the fixed shifts of the shift test (train_host.shift)."""
    s = float(strength)
    return [
        RandomWhiteBalance(0.25 * s),
        RandomGamma(1 + 0.6 * s),
        RandomJPEG((max(10, int(95 - 70 * s)), 95)),
        v2.RandomApply([v2.GaussianBlur(9, sigma=(0.5, 0.5 + 2.5 * s))], p=0.2),
        v2.RandomApply([v2.RandomZoomOut(fill=128, side_range=(1.0, 1 + s))], p=0.2),
    ]


def train_transform(
    spec: PreprocessSpec,
    strength: float = 1.0,
    clahe: bool = False,
    size: int | None = None,
    normalise: bool = True,
    camera: float = 0.0,
    lesion_crop: float = 0.0,
    text: float = 0.0,
    tone: float = 0.0,
) -> v2.Compose:
    """uint8 CHW tensor -> normalised float tensor of spec.size. strength 0 = resize only.
    `size` / `normalise=False`: [0, 1] views at another size (distillation resizes them itself).
    `lesion_crop` / `text` / `tone`: probabilities of a kit-framing crop, of pasted caption text
    and of a skin-tone change."""
    s, size = float(strength), size or spec.size
    ops: list[v2.Transform] = [RandomLesionCrop(lesion_crop)] if lesion_crop > 0 else []
    # zoom-out first (it grows the image), the crop then brings it back to `size`
    ops += camera_ops(camera)[-1:] if camera > 0 else []
    ops += [
        v2.RandomResizedCrop(size, scale=(max(0.25, 1 - 0.45 * s), 1.0), antialias=True)
        if s > 0
        else v2.Resize((size, size), antialias=True)
    ]
    ops += [RandomText(text)] if text > 0 else []
    ops += [RandomTone(tone)] if tone > 0 else []
    if s > 0:
        ops += [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomAffine(degrees=30 * s, translate=(0.1 * s, 0.1 * s), shear=10 * s),
            v2.ColorJitter(brightness=0.3 * s, contrast=0.3 * s, saturation=0.2 * s, hue=0.02 * s),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5 * s))], p=0.2),
            v2.RandomAdjustSharpness(1 + s, p=0.2),
        ]
    if camera > 0:
        ops += camera_ops(camera)[:-1]
    if clahe:
        ops.append(RandomCLAHE())
    if spec.colour_constancy == "shades_of_grey":
        ops.append(ShadesOfGrey())
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if s > 0:
        ops.append(v2.RandomApply([v2.GaussianNoise(sigma=0.03 * s)], p=0.2))
    if normalise:
        ops.append(v2.Normalize(list(spec.mean), list(spec.std)))
    return v2.Compose(ops)
