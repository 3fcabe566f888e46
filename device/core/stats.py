"""Interval arithmetic the kit itself needs (its benchmarks, its own lab-result report),
with no scipy on the device: the Wilson score interval is a closed form."""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(k: int, n: int, z: float = Z95) -> list[float]:
    """95 % Wilson score interval of k successes in n trials (no continuity correction: what
    scipy's binomtest(k, n).proportion_ci(method="wilson") gives); [nan, nan] for n = 0."""
    if n == 0:
        return [float("nan")] * 2
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def rate(k: int, n: int) -> dict:
    """k of n as a reported rate: `{"value", "low", "high", "n"}` (None when n is 0), the shape
    every rate of the kit's own report and of a site calibration takes."""
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    low, high = wilson(k, n)
    return {"value": k / n, "low": low, "high": high, "n": n}
