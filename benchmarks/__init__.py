"""`mpox-bench`: latency, memory, accuracy and ARM-cost benchmarks of the kit's model files.

Timing and memory use only the kit's own runtimes (`device.core.runtimes`), so the numbers are what
the
kit sees; exporting baseline models is a separate host step (`mpox-bench export-baselines`), so
every timing command also runs on a board that has only the `device` and `tflite` extras.
"""

from __future__ import annotations

from pathlib import Path

from device import KitError


class BenchError(KitError):
    """A problem the user can fix (missing tool, file or model): one line, exit status 2."""


PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
RESULTS_DIR = PACKAGE_DIR / "results"
