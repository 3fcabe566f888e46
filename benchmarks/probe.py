"""Child process of `mpox-bench latency`: one model file, one thread count, timed through the kit's
own runtime (`device.core.runtimes.open_runtime`). Prints one JSON line with the summary and this
process's peak RSS (VmHWM, see benchmarks.proc). Imports only numpy and the device package.

    python -m benchmarks.probe FILE --threads 1 --runs 200 --warmup 20
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.proc import vm_hwm_mb
from benchmarks.stats import summarise


def sample_input(runtime, seed: int = 0) -> np.ndarray:
    """A fixed preprocessed-looking tensor (roughly ImageNet-normalised) in the file's layout."""
    s = runtime.input_size
    shape = (1, 3, s, s) if runtime.layout == "NCHW" else (1, s, s, 3)
    return np.random.default_rng(seed).uniform(-2.0, 2.5, shape).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    p.add_argument("file", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    args = p.parse_args(argv)

    from device.core.runtimes import open_runtime

    t0 = time.perf_counter()
    runtime = open_runtime(args.file, args.threads)
    load_ms = (time.perf_counter() - t0) * 1000.0
    x = sample_input(runtime)
    for _ in range(args.warmup):
        runtime.run(x)
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        runtime.run(x)
        times.append((time.perf_counter() - t) * 1000.0)
    out = {
        **summarise(times),
        "load_ms": round(load_ms, 2),
        "rss_mb": round(
            vm_hwm_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "input_size": runtime.input_size,
        "layout": runtime.layout,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
