"""The typed manifest (device.core.manifest): parsed once, every accepted field acted on or
refused."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from device import DeviceError
from device.core.bundle import load_bundle
from device.core.manifest import Manifest

MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT = MODELS / (MODELS / "DEFAULT").read_text().strip()


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads((DEFAULT / "manifest.json").read_text())


def test_the_default_parses_into_typed_fields(document):
    m = Manifest.parse(document, "default")
    assert m.name == document["model"]["name"] and m.classes == tuple(document["classes"])
    assert m.threshold == document["threshold"] and m.classes[m.positive_index] == "mpox"
    assert m.input.size == document["input"]["size"] and m.input.crop == "center_square"
    assert {p.file for p in m.pinned()} == {*document["files"], "ood.npz", "card.md"}
    assert m.ood.limit == document["ood"]["limit"] and m.created.tzinfo is not None
    assert m.entry("model.int8.onnx").precision == "int8"
    with pytest.raises(TypeError):
        m.document["threshold"] = 0.99  # what was checked is what is used
    bundle = load_bundle(DEFAULT, verify=False)
    assert bundle.input == m.input.as_dict() and bundle.input["colour_order"] == "RGB"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(decision_rule="argmax"), "unknown field(s) 'decision_rule'"),
        (lambda m: m["input"].update(gamma=2.2), "unknown field(s) 'gamma'"),
        (lambda m: m["input"].update(colour_order="BGR"), "'colour_order' is 'BGR'"),
        (lambda m: m["input"].update(scale="1/65535"), "'scale' is '1/65535'"),
    ],
)
def test_a_field_the_kit_would_not_act_on_is_refused(document, edit, message):
    """A manifest may only say what the kit does: a BGR model (the kit feeds RGB), another pixel
    scale, or a field the kit does not know would otherwise be accepted and ignored."""
    m = copy.deepcopy(document)
    edit(m)
    with pytest.raises(DeviceError, match="^where[ :].*" + re.escape(message)):
        Manifest.parse(m, "where")
