"""Temporal smoothing: the verdict follows the mean of the last N frames' probabilities, so a
hand-held camera does not make it flicker between likely and unlikely."""

from __future__ import annotations

from collections import deque

import numpy as np

from device.screener import decide


class Smoother:
    def __init__(self, frames: int, positive: int, threshold: float):
        self.window: deque[np.ndarray] = deque(maxlen=frames)
        self.positive, self.threshold = positive, threshold

    def add(self, probs: np.ndarray) -> tuple[np.ndarray, int]:
        """The smoothed probabilities and the class decided on them."""
        self.window.append(probs)
        mean = np.mean(self.window, axis=0)
        return mean, decide(mean, self.positive, self.threshold)

    def reset(self) -> None:
        """A new camera or a gap: old frames must not vote on the new view."""
        self.window.clear()
