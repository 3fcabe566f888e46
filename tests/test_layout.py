"""The kit's layout shows its architecture (docs/design.md, "The kit's packages follow its
concerns"): the screening core imports neither the live kit, the saved cases nor the updates."""

from __future__ import annotations

import ast
from pathlib import Path

DEVICE = Path(__file__).resolve().parents[1] / "device"
OUTSIDE_CORE = ("device.live", "device.cases", "device.updates", "device.config")


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_the_core_imports_nothing_of_the_live_kit_cases_updates_or_config():
    """The core takes values (a `QualityLimits`, a thread count), never the kit's file: the
    config imports the core's types, not the other way round."""
    modules = sorted((DEVICE / "core").rglob("*.py"))
    assert len(modules) >= 15
    found = [
        f"{m.relative_to(DEVICE.parent)}: {n}"
        for m in modules
        for n in imports(m)
        if (n + ".").startswith(tuple(p + "." for p in OUTSIDE_CORE))
    ]
    assert not found, found


def test_every_device_module_sits_in_a_package_by_concern():
    """Nothing new lands loose at the top: only the CLI, options, registry, language and the
    classify command sit beside the five packages."""
    top = {p.stem for p in DEVICE.glob("*.py")}
    assert top == {"__init__", "cli", "classify", "i18n", "options", "registry"}
    assert {p.name for p in DEVICE.iterdir() if (p / "__init__.py").is_file()} == {
        "config",
        "core",
        "live",
        "cases",
        "updates",
    }
