"""`mpox-screen classify`: screen stored photos with a bundle, one line (or JSON line) per image."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2

from device import DeviceError
from device.bundle import default_bundle_dir, load_bundle
from device.config import ClassifyOptions, Config, quality_limits
from device.i18n import N_, _
from device.images import UnreadableImage, find_images, read_rgb, tiny, write_image
from device.overlay import heat_overlay
from device.preprocess import crop
from device.quality import GUIDANCE, Quality, assess
from device.screener import CANNOT_JUDGE, Prediction, Screener, likelihood
from device.skin import MIN_SKIN
from device.skin_tone import group_of, ita

TINY = N_("tiny image ({size} px): a result means little")


def verdict(pred: Prediction, positive_class: str) -> str:
    """Mpox likely / unlikely; a multi-class bundle also names the likeliest other class."""
    text = likelihood(positive_class, pred.positive)
    if len(pred.classes) > 2 and not pred.positive:
        text += " " + _("(likeliest: {label})").format(label=pred.label)
    return text


def cam_path(out: Path, image: Path, used: set[str]) -> Path:
    """NAME.cam.png, or NAME-2.cam.png ... when two photos of this run share a name."""
    name, n = f"{image.stem}.cam.png", 2
    while name in used:
        name, n = f"{image.stem}-{n}.cam.png", n + 1
    used.add(name)
    return out / name


def write_cam(path: Path, rgb, pred: Prediction, spec: dict) -> None:
    seen = cv2.cvtColor(crop(rgb, spec["crop"]), cv2.COLOR_RGB2BGR)
    if not write_image(path, heat_overlay(seen, pred.cam)):
        raise DeviceError(f"cannot write {path}")


def cam_folder(path: Path) -> Path:
    """--cam-out as a writable folder (made if missing), or a one-line error."""
    if path.exists() and not path.is_dir():
        raise DeviceError(f"--cam-out {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DeviceError(f"--cam-out {path}: cannot create it ({e.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DeviceError(f"--cam-out {path}: not writable")
    return path


def tone_fields(rgb) -> dict:
    """The skin tone of the square the model reads (device.skin_tone), for every JSON row: so
    an evaluator can break any batch's results down by tone."""
    angle = ita(rgb)
    return {"ita": None if angle is None else round(angle, 1), "ita_group": group_of(angle)}


def _poor(path: Path, q: Quality, warning: str, opts: ClassifyOptions, out, tone: dict) -> None:
    """No verdict: what is wrong with the photo and what to do, instead."""
    if opts.json:
        row = {"path": str(path), "status": "poor_quality", "problem": q.problem, **tone}
        row |= {"guidance": GUIDANCE[q.problem], "quality": q.as_dict()}
        print(json.dumps(row | ({"warning": warning} if warning else {})), file=out)
    else:
        text = _("no verdict, poor quality ({problem}): {guidance}").format(
            problem=q.problem, guidance=_(GUIDANCE[q.problem])
        )
        print(f"{path}: {text}{_warning(warning)}", file=out)


def _cannot_judge(path: Path, pred: Prediction, limit, warning: str, opts, out, tone: dict):
    """No verdict: no skin in the square, or a photo unlike any the model was trained on."""
    if opts.json:
        row = {"path": str(path), "status": "cannot_judge", "guidance": CANNOT_JUDGE, **tone}
        row |= {"skin": round(pred.skin, 4), "min_skin": MIN_SKIN}
        if pred.ood_score is not None:
            row |= {"ood_score": round(pred.ood_score, 4), "ood_limit": round(limit, 4)}
        print(json.dumps(row | ({"warning": warning} if warning else {})), file=out)
        return
    if pred.no_skin:
        text = _(
            "no verdict, cannot judge: not a skin-lesion photo (skin-coloured {skin} of the "
            "square < {least})"
        ).format(skin=f"{pred.skin:.0%}", least=f"{MIN_SKIN:.0%}")
    else:
        text = _(
            "no verdict, cannot judge: not a skin-lesion photo (OOD score {score} > limit {limit})"
        ).format(score=f"{pred.ood_score:.2f}", limit=f"{limit:.2f}")
    print(f"{path}: {text}{_warning(warning)}", file=out)


def _tiny_warning(rgb, translate: bool) -> str:
    """In the kit's language for people, English for JSON."""
    text = _(TINY) if translate else TINY
    return text.format(size=f"{rgb.shape[1]}x{rgb.shape[0]}") if tiny(rgb) else ""


def _warning(warning: str) -> str:
    return "  " + _("WARNING: {warning}").format(warning=warning) if warning else ""


def _skip(path: Path, why: str, opts: ClassifyOptions, out, err) -> None:
    msg = {"path": str(path), "error": why}
    text = json.dumps(msg) if opts.json else f"{path}: " + _("skipped, {why}").format(why=why)
    print(text, file=out if opts.json else err)


def classify(opts: ClassifyOptions, out=sys.stdout, err=sys.stderr) -> int:
    """Exit status: 0 all screened, 1 some images unreadable, (DeviceError for the rest)."""
    bundle = load_bundle(opts.bundle or default_bundle_dir())
    screener = Screener(bundle, bundle.select(opts.backend, opts.precision), opts.threads)
    if opts.cam_out:
        cam_folder(opts.cam_out)
    seen = failed = 0
    limits = quality_limits(Config())
    used: set[str] = set()
    for found in find_images(opts.paths):
        path = found.path
        seen += 1
        try:
            if found.problem:
                raise UnreadableImage(found.problem)
            rgb = read_rgb(path, opts.max_pixels)
        except UnreadableImage as e:
            failed += 1
            _skip(path, str(e), opts, out, err)
            continue
        quality = assess(rgb, limits)
        warning = _tiny_warning(rgb, translate=not opts.json)
        tone = tone_fields(rgb) if opts.json else {}
        if opts.quality_gate and quality.problem:
            _poor(path, quality, warning, opts, out, tone)
            continue
        pred = screener.predict(rgb)
        if opts.ood_gate and not pred.judgeable:
            limit = screener.ood.limit if screener.ood else None
            _cannot_judge(path, pred, limit, warning, opts, out, tone)
            continue
        if opts.cam_out:
            write_cam(cam_path(opts.cam_out, path, used), rgb, pred, bundle.input)
        if opts.json:
            extra = {"warning": warning} if warning else {}
            row = {"path": str(path), "status": "ok", **pred.as_dict(), **tone, **extra}
            print(json.dumps({**row, "quality": quality.as_dict()}), file=out)
        else:
            cls = bundle.manifest["positive_class"]
            numbers = _("P({cls})={prob} (threshold {threshold})").format(
                cls=cls, prob=f"{pred.positive_prob:.3f}", threshold=f"{bundle.threshold:.3f}"
            )
            print(
                f"{path}: {verdict(pred, cls)}  {numbers}  {pred.latency_ms:.1f} ms"
                + _warning(warning),
                file=out,
            )
    if seen == 0:
        raise DeviceError("no images found under " + ", ".join(map(str, opts.paths)))
    return 1 if failed else 0
