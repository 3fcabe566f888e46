"""`mpox-train gate`: the "cannot judge" reference (`train_host.ood`) fitted on a model's
features (a checkpoint's fp32 graph before export, or a bundle's int8 ONNX file:
`train_host.gate_readers`) and judged leave-one-collection-out.

Judged like the classifier (issue 28): for each look-alike collection in turn, the reference is
fitted without it and the collection's photos (whole, kit-framed crops, darker-skinned copies,
per skin-tone group) are the lesion photos it must judge; MSID's held-out photos too. Beside
them, what it must refuse or at least not call "Mpox likely": the gate's development set
(`nonskin/objects`: the half the lesion check never learned from; `nonskin/skin_no_lesion`) and
the photographs that ship with scikit-image, scikit-learn and matplotlib; and the darkening
test (MSID held-out mpox photos the fit judges, darkened in steps: refused how often). A refusal
is the kit's: the score over its limit or no skin in the square.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from device.core.bundle import Bundle
from device.core.ood import OodModel
from device.core.skin import MIN_SKIN
from device.core.skin_tone import darken, tone_groups
from device.core.stats import rate
from train_host import UserError, ood
from train_host.collection_shift import other_collections
from train_host.data import Dataset, load_collection, load_dataset, photo_key, trains_probe
from train_host.gate_readers import Reader
from train_host.grouping import Split

TARGETS = {"lesion_refused_max": 0.05, "objects_not_likely": 0.95, "plain_not_likely": 0.90}
STEPS = (0.8, 0.65, 0.5)  # the darkening test's Lab L* scales (down to ITA about -40 on MSID)


def refused(model: OodModel, z: np.ndarray, skin: np.ndarray) -> np.ndarray:
    return (model.scores(z) > model.limit) | (skin < MIN_SKIN)


def load_sets(
    data: Path, split: Path, collections: list[Path] | None = None
) -> tuple[Dataset, Dataset, dict[str, Dataset]]:
    """MSID's training and held-out test part (the model's split) and the other collections
    (`collections`, default: every one beside the data folder)."""
    msid = load_dataset(data, "binary")
    parts = Split.load(split)
    roots = other_collections(data) if collections is None else collections
    others = {root.name: load_collection(root) for root in roots}
    if not others:
        raise UserError(f"no look-alike collection beside {data}: nothing to judge the gate on")
    return parts.part(msid, "train"), parts.part(msid, "test"), others


def photos(name: str, data: Dataset) -> list[tuple[str, str, np.ndarray]]:
    return [(name, photo_key(name, p), im) for p, im in zip(data.paths, data.images, strict=True)]


def reference_photos(data: Path, sets, stride: int = 1) -> list[tuple[str, str, np.ndarray]]:
    """MSID's training photos and every other collection's (every `stride`th of each)."""
    train, _, others = sets
    parts = {data.name: train} | others
    return [x for n, d in parts.items() for x in photos(n, d)[::stride]]


def object_photos(data: Path) -> tuple[list[tuple[str, str, np.ndarray]], list[np.ndarray]]:
    """`nonskin/objects` beside the collections, halved by `data.trains_probe`: (the lesion
    check's negatives as (collection, key, image), the held-out half it is judged on)."""
    root = data.parent / "nonskin"
    if not (root / "objects").is_dir():
        raise UserError(f"no {root / 'objects'}: the lesion check learns objects from it")
    found = load_collection(root)
    train, held = [], []
    for path, image in zip(found.paths, found.images, strict=True):
        if path.parent.name != "objects":
            continue
        key = photo_key(root.name, path)
        if trains_probe(key):
            train.append((root.name, key, image))
        else:
            held.append(image)
    return train, held


def object_features(reader: Reader, photos: list[tuple[str, str, np.ndarray]]) -> np.ndarray:
    """The lesion check's negatives' features: whole, kit crops and darker, not the darkest
    copy, which only lesion photos get."""
    found = ood.reference(reader.features, photos)
    return found.z[found.kinds != "darkest"]


def _rate(flags: np.ndarray) -> dict:
    return rate(int(np.sum(flags)), len(flags))


def by_tone(flags: np.ndarray, images: list[np.ndarray]) -> dict[str, dict]:
    labels, order, _ = tone_groups(images)
    return {g: _rate(flags[labels == g]) for g in order}


class Judge:
    """Everything the gate is judged on, read once; `row` judges one fitted model."""

    def __init__(self, reader: Reader, test: Dataset, data: Path):
        from benchmarks.ood import gate_sets, non_skin_images

        kit = self.reader = reader
        self.test = test
        self.test_read = kit.read(test.images)
        found = gate_sets(data.parent, held_out=True)  # objects: those no lesion check learns
        self.gate = {name.split("/")[-1]: kit.read(ims) for name, ims in found.items()}
        self.library = kit.read(list(non_skin_images().values()))
        mpox = np.flatnonzero(test.binary_targets() == 1)
        self.mpox = [test.images[i] for i in mpox]
        self.darker = {f: kit.read([darken(im, f) for im in self.mpox]) for f in STEPS}

    def row(self, model: OodModel, ref: ood.Reference, left: str | None, images) -> dict:
        out: dict = {"left_out": left, "limit": model.limit}
        if left is not None:
            part = ref.pick(ref.collections == left)
            flags = refused(model, part.z, part.skin)
            kinds = sorted(set(part.kinds))
            out["left_out_refused"] = {k: _rate(flags[part.kinds == k]) for k in kinds}
            out["left_out_by_tone"] = by_tone(flags[part.kinds == "whole"], images)
        z, p, skin = self.test_read
        flags = refused(model, z, skin)
        out["msid_test_refused"] = _rate(flags)
        out["msid_test_by_tone"] = by_tone(flags, self.test.images)
        judged = ~flags[self.test.binary_targets() == 1]
        out["darkened_mpox_refused"] = {
            str(f): _rate(refused(model, z2, s2)[judged]) for f, (z2, _, s2) in self.darker.items()
        }
        for name, (z, p, skin) in self.gate.items():
            flags = refused(model, z, skin)
            likely = ~flags & (p >= self.reader.threshold)
            out[name] = {"refused": _rate(flags), "not_likely": _rate(~likely)}
        z, _, skin = self.library
        out["library_non_skin_refused"] = _rate(refused(model, z, skin))
        return out


def file_agreement(
    bundle: Bundle, model: OodModel, images: list[np.ndarray]
) -> tuple[dict[str, dict], np.ndarray]:
    """Each model file's refusals against the fp32 ONNX file's under `model`, on the gate photos:
    the export gate's measure and limits, the fp32 file standing in for the PyTorch graph; and
    the fp32 file's scores (what the manifest's refusal rates are)."""
    from train_host.export.gate import Limits, ood_metrics, run_file

    runs = {f.name: run_file(f.path, images, bundle.input, f.layout) for f in bundle.files()}
    ref = model.scores(runs.get("model.fp32.onnx", runs["model.int8.onnx"]).features)
    out, limits = {}, Limits()
    for name, run in runs.items():
        out[name] = ood_metrics(ref, model.scores(run.features), model.limit, limits.ood_band)
        if out[name]["ood_firm_agreement"] < limits.ood_firm_agreement:
            raise UserError(
                f"{name}: its cannot-judge decisions follow the fp32 file's on "
                f"{out[name]['ood_firm_agreement']:.3f} of photos away from the limit "
                f"(< {limits.ood_firm_agreement}); the bundle is not rewritten"
            )
    return out, ref


@dataclass(frozen=True)
class GateFit:
    report: dict  # the leave-one-collection-out judgement
    model: OodModel  # fitted on every collection: what a new bundle ships
    gate_photos: list[np.ndarray]  # MSID held-out and every other collection's, whole
    gate_names: list[str]  # each gate photo's collection


def judge(
    reader: Reader,
    current: OodModel | None,
    data: Path,
    sets: tuple[Dataset, Dataset, dict[str, Dataset]],
    stride: int = 1,
) -> GateFit:
    """`current`: the model's gate so far, judged beside (None: none); `sets`: `load_sets`;
    `stride`: every Nth reference photo of each collection (quick runs)."""
    _, test, others = sets
    ref = ood.reference(reader.features, reference_photos(data, sets, stride))
    objects = object_features(reader, object_photos(data)[0]) if reader.lesion_check else None
    judge = Judge(reader, test, data)
    rows = []
    if current is not None:
        for name, d in others.items():
            rows.append(judge.row(current, ref, name, d.images[::stride]) | {"fit": "its own"})
    for name, d in tqdm(others.items(), desc="leave one collection out", leave=False):
        model = ood.fit(ref.pick(ref.collections != name), reader.sizes, objects)
        rows.append(judge.row(model, ref, name, d.images[::stride]) | {"fit": "without it"})
    shipped = ood.fit(ref, reader.sizes, objects)
    rows.append(judge.row(shipped, ref, None, None) | {"fit": "every collection"})
    doc = {"model": reader.name, "data": str(data), "targets": TARGETS, "rows": rows}
    gate_photos = test.images + [im for d in others.values() for im in d.images]
    names = [data.name] * len(test) + [n for n, d in others.items() for _ in d.images]
    return GateFit(doc, shipped, gate_photos, names)
