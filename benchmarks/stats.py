"""Latency summaries: percentiles of a list of per-run times."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summarise(times_ms: Sequence[float]) -> dict:
    """p50 / p95 / p99 (linear interpolation), mean, min and max, rounded to microseconds."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no timings")
    p50, p95, p99 = np.percentile(t, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 4),
        "p95_ms": round(float(p95), 4),
        "p99_ms": round(float(p99), 4),
        "mean_ms": round(float(t.mean()), 4),
        "min_ms": round(float(t.min()), 4),
        "max_ms": round(float(t.max()), 4),
    }
