"""The one plug-in registry (runtimes, sources, displays, host models)."""

import sys

from device.core.runtimes import RUNTIMES
from device.live.sources import SOURCES
from device.registry import Registry


def test_builtins_load_on_first_use_only(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    family = Registry("thing", ("colorsys",))  # a stdlib module stands in for a plug-in
    family.register("a")(1)
    assert "colorsys" not in sys.modules  # declaring a family imports nothing
    assert family.get("a") == 1 and family.get("b") is None
    assert "colorsys" in sys.modules and family.names() == ["a"]


def test_kit_families_list_their_plugins():
    assert RUNTIMES.names() == [".onnx", ".tflite"]
    assert {"csi", "demo", "dir", "file", "v4l2", "auto"} <= set(SOURCES.names())
