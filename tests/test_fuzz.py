"""Fuzzing the kit's inputs: manifests, TOML bytes, flag values, image bytes, display patterns.

The invariant everywhere: a usable result or the kit's one-line error (DeviceError /
UnreadableImage), never another exception, a hang or unbounded memory. CI runs a bounded number of
cases; `MPOX_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py` is the longer run.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device import DeviceError
from device.config import DisplayConfig, from_flags, load
from device.config.keys import by_flag, coerce
from device.core.bundle import load_bundle
from device.core.images import UnreadableImage, read_rgb
from device.core.manifest_check import validate
from device.live.displays.files import FrameFiles
from tests.conftest import MODELS

EXAMPLES = int(os.environ.get("MPOX_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MANIFEST = json.loads((MODELS / "micrompoxnet-binary" / "manifest.json").read_text())

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(d, prefix=()):
    """Every key path in a nested manifest."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


PATHS = list(_paths(MANIFEST))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values, st.booleans()), max_size=4))
def test_mutated_manifests_are_accepted_or_one_line(edits):
    m = copy.deepcopy(MANIFEST)
    for path, value, delete in edits:
        node = m
        try:
            for key in path[:-1]:
                node = node[key]
            if delete:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        validate(m, "fuzz")
    except DeviceError as e:
        assert "\n" not in str(e)


@FUZZ
@given(st.binary(max_size=300))
def test_toml_bytes_are_a_config_or_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("toml") / "config.toml"
    path.write_bytes(data)
    try:
        load(path, {})
    except DeviceError as e:
        assert "\n" not in str(e)


@FUZZ
@given(st.sampled_from(sorted(by_flag())), st.text(max_size=20))
def test_flag_values_are_a_config_or_one_line(name, text):
    try:
        from_flags(**{name: coerce(name, by_flag()[name].field, text)})
    except DeviceError as e:
        assert "\n" not in str(e)


def _png_bytes() -> bytes:
    img = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


PNG = _png_bytes()


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=400),
        st.lists(st.tuples(st.integers(0, len(PNG) - 1), st.integers(0, 255)), max_size=8).map(
            lambda flips: bytes(dict(flips).get(i, b) for i, b in enumerate(PNG))
        ),
    )
)
def test_image_bytes_are_an_image_or_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("img") / "x.png"
    path.write_bytes(data)
    try:
        rgb = read_rgb(path)
    except UnreadableImage as e:
        assert "\n" not in str(e)
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


@FUZZ
@given(st.text(alphabet="%dsx0123456789_./ab-", max_size=16))
def test_display_patterns_work_or_one_line(tmp_path_factory, pattern):
    root = tmp_path_factory.mktemp("disp")
    try:
        display = FrameFiles(str(root / pattern), DisplayConfig())
        display.show(np.zeros((16, 16, 3), np.uint8))
    except DeviceError as e:
        assert "\n" not in str(e)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_fuzzed_manifest_on_disk_loads_or_is_one_line(tmp_path):
    """The loader end to end on a few hostile manifests written next to real model files."""
    src = MODELS / "micrompoxnet-binary"
    for i, change in enumerate([{"files": {"a" * 200 + ".onnx": {}}}, {"threshold": "0.3"}]):
        root = tmp_path / str(i)
        root.mkdir()
        shutil.copy(src / "model.int8.onnx", root)
        (root / "manifest.json").write_text(json.dumps({**MANIFEST, **change}))
        try:
            load_bundle(Path(root))
        except DeviceError as e:
            assert "\n" not in str(e)
