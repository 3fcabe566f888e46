"""`mpox-screen classify`: screen stored photos with a bundle, one line (or JSON line) per image.

It screens as the kit's screen does: the model, gates and language come from the kit's config
(the same sections `run` reads), and the flags that set them are the same keys' flags."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from device import DeviceError
from device.config import SYSTEM_CONFIG, Config, flag_values, load, state_dir
from device.config.keys import flags
from device.core.bundle import default_bundle_dir, load_bundle
from device.core.images import MAX_PIXELS, UnreadableImage, find_images, read_rgb, tiny, write_image
from device.core.preprocess import crop
from device.core.quality import GUIDANCE, assess
from device.core.runtimes import Placement
from device.core.runtimes.providers import ENGINES
from device.core.screener import Screener
from device.core.skin import MIN_SKIN
from device.core.skin_tone import group_of, ita
from device.core.verdict import CANNOT_JUDGE, Status, Verdict
from device.i18n import N_, _, add_language_flag
from device.i18n import use as use_language
from device.live.overlay import heat_overlay
from device.options import add_flags, from_args, option

TINY = N_("tiny image ({size} px): a result means little")
# the config keys classify takes as flags (default: the kit's config)
KEYS = ("bundle", "backend", "precision", "threads", "providers", "quality_gate", "ood_gate")


@dataclass(frozen=True)
class ClassifyOptions:
    """What only `classify` has; the model and gate flags are the config's (`KEYS`)."""

    paths: list[Path]
    json: bool = field(default=False, metadata=option("one JSON line per image"))
    cam_out: Path | None = field(default=None, metadata=option("write heat-map overlays here"))
    max_pixels: int = field(
        default=MAX_PIXELS,
        metadata=option(
            f"refuse larger images, checked before decoding (default {MAX_PIXELS:,})", lo=1
        ),
    )
    config: Path | None = field(
        default=None,
        metadata=option(
            f"TOML file whose model, gate settings and language apply, as on the kit's screen "
            f"(default {SYSTEM_CONFIG} if present)"
        ),
    )


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add_flags(p, ClassifyOptions)
    add_flags(p, [f for f in flags() if f.name in KEYS], overrides=True)
    add_language_flag(p)


def run(args) -> int:
    opts = from_args(ClassifyOptions, args)
    kit = load(opts.config, flag_values(args))  # the screen's settings, flags over them
    use_language(args.language or kit.kit.language)
    return classify(opts, kit)


def verdict_text(v: Verdict) -> str:
    """Mpox likely / unlikely; a multi-class bundle also names the likeliest other class."""
    text = v.text
    if len(v.classes) > 2 and not v.positive:
        text += " " + _("(likeliest: {label})").format(label=v.label)
    return text


def cam_path(out: Path, image: Path, used: set[str]) -> Path:
    """NAME.cam.png, or NAME-2.cam.png ... when two photos of this run share a name."""
    name, n = f"{image.stem}.cam.png", 2
    while name in used:
        name, n = f"{image.stem}-{n}.cam.png", n + 1
    used.add(name)
    return out / name


def write_cam(path: Path, rgb, v: Verdict, spec: dict) -> None:
    seen = cv2.cvtColor(crop(rgb, spec["crop"]), cv2.COLOR_RGB2BGR)
    if not write_image(path, heat_overlay(seen, v.cam)):
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
    """The skin tone of the square the model reads (device.core.skin_tone), for every JSON row: so
    an evaluator can break any batch's results down by tone."""
    angle = ita(rgb)
    return {"ita": None if angle is None else round(angle, 1), "ita_group": group_of(angle)}


def _poor(path: Path, v: Verdict, warning: str, opts: ClassifyOptions, out, tone: dict) -> None:
    """No verdict: what is wrong with the photo and what to do, instead."""
    if opts.json:
        row = {"path": str(path), "status": v.status.value, "problem": v.problem, **tone}
        row |= {"guidance": GUIDANCE[v.problem], "quality": v.quality}
        print(json.dumps(row | ({"warning": warning} if warning else {})), file=out)
    else:
        text = _("no verdict, poor quality ({problem}): {guidance}").format(
            problem=v.problem, guidance=v.text
        )
        print(f"{path}: {text}{_warning(warning)}", file=out)


def _cannot_judge(path: Path, v: Verdict, warning: str, opts, out, tone: dict) -> None:
    """No verdict: no skin in the square, or a photo unlike any the model was trained on."""
    if opts.json:
        row = {"path": str(path), "status": v.status.value, "guidance": CANNOT_JUDGE, **tone}
        row |= {"skin": round(v.skin, 4), "min_skin": MIN_SKIN}
        if v.ood_score is not None:
            row |= {"ood_score": round(v.ood_score, 4), "ood_limit": round(v.ood_limit, 4)}
        print(json.dumps(row | ({"warning": warning} if warning else {})), file=out)
        return
    if v.no_skin:
        text = _(
            "no verdict, cannot judge: not a skin-lesion photo (skin-coloured {skin} of the "
            "square < {least})"
        ).format(skin=f"{v.skin:.0%}", least=f"{MIN_SKIN:.0%}")
    else:
        text = _(
            "no verdict, cannot judge: not a skin-lesion photo (OOD score {score} > limit {limit})"
        ).format(score=f"{v.ood_score:.2f}", limit=f"{v.ood_limit:.2f}")
    print(f"{path}: {text}{_warning(warning)}", file=out)


def _screened(path: Path, v: Verdict, warning: str, opts, out, tone: dict) -> None:
    if opts.json:
        extra = {"warning": warning} if warning else {}
        row = {"path": str(path), "status": v.status.value, **v.as_dict(), **tone, **extra}
        print(json.dumps({**row, "quality": v.quality}), file=out)
        return
    numbers = _("P({cls})={prob} (threshold {threshold})").format(
        cls=v.positive_class, prob=f"{v.positive_prob:.3f}", threshold=f"{v.threshold:.3f}"
    )
    print(
        f"{path}: {verdict_text(v)}  {numbers}  {v.latency_ms:.1f} ms" + _warning(warning),
        file=out,
    )


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


def classify(opts: ClassifyOptions, kit: Config, out=sys.stdout, err=sys.stderr) -> int:
    """Screen with the kit's model and gate settings (`kit`: the config the screen runs with,
    the flags over it). Exit status: 0 all screened, 1 some images unreadable, (DeviceError for
    the rest)."""
    model, gates = kit.model, kit.gates
    bundle = load_bundle(model.bundle or default_bundle_dir())
    place = Placement(model.providers, state_dir(kit.cases) / ENGINES)
    screener = Screener(bundle, bundle.select(model.backend, model.precision), model.threads, place)
    if opts.cam_out:
        cam_folder(opts.cam_out)
    seen = failed = 0
    decider = screener.decider(ood_gate=gates.ood_gate)  # one photo at a time: no window
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
        quality = assess(rgb, gates.quality)
        warning = _tiny_warning(rgb, translate=not opts.json)
        tone = tone_fields(rgb) if opts.json else {}
        if gates.quality_gate and quality.problem:
            v = decider.poor_quality(quality.problem, quality.as_dict())
            _poor(path, v, warning, opts, out, tone)
            continue
        v = decider.judge(screener.read(rgb), quality.as_dict())
        if v.status is Status.CANNOT_JUDGE:
            _cannot_judge(path, v, warning, opts, out, tone)
            continue
        if opts.cam_out:
            write_cam(cam_path(opts.cam_out, path, used), rgb, v, bundle.input)
        _screened(path, v, warning, opts, out, tone)
    if seen == 0:
        raise DeviceError("no images found under " + ", ".join(map(str, opts.paths)))
    return 1 if failed else 0
