"""`demo://`: generated frames of skin with pustule-like spots, drifting like a hand-held camera.

Every machine has it (no camera, no dataset image, no download): the README's first command, the
benchmarks and the tests run the real model on it. It is a picture of nothing clinical; what the
model says about it means nothing.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from device.config import SourceConfig
from device.live.sources import Frame, register


def skin_scene(width: int, height: int, seed: int = 7) -> np.ndarray:
    """A BGR skin patch 25 % larger than the view, with a dozen raised, umbilicated spots."""
    rng = np.random.default_rng(seed)
    w, h = int(width * 1.25), int(height * 1.25)
    tone = np.array([120, 150, 200], np.float32)  # BGR, a mid skin tone
    noise = cv2.resize(rng.normal(0, 1, (h // 16, w // 16)).astype(np.float32), (w, h))
    scene = np.clip(tone + noise[..., None] * 9 + rng.normal(0, 3, (h, w, 1)), 0, 255)
    scene = scene.astype(np.uint8)
    for _ in range(12):
        x, y = int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.1, 0.9) * h)
        r = int(rng.uniform(0.018, 0.04) * min(w, h))
        cv2.circle(scene, (x, y), int(r * 1.8), (95, 105, 205), -1, cv2.LINE_AA)  # red halo
        cv2.circle(scene, (x, y), r, (175, 200, 230), -1, cv2.LINE_AA)  # pale pustule
        cv2.circle(scene, (x, y), max(2, r // 3), (80, 95, 140), -1, cv2.LINE_AA)  # dark centre
    return cv2.GaussianBlur(scene, (0, 0), 1.2)


class DemoSource:
    live = True

    def __init__(self, _: str, opts: SourceConfig):
        self.w, self.h = opts.width, opts.height
        self.scene = skin_scene(self.w, self.h)
        self.period, self.n, self.next_time = 1.0 / opts.fps, 0, time.monotonic()
        self.description = f"generated demo frames ({self.w}x{self.h} at {opts.fps:g} fps)"

    def read(self) -> Frame:
        time.sleep(max(0.0, self.next_time - time.monotonic()))
        self.next_time = max(self.next_time + self.period, time.monotonic())
        self.n += 1
        sh, sw = self.scene.shape[:2]
        t = self.n / 30.0
        x = int((sw - self.w) * (0.5 + 0.45 * np.sin(t * 0.7)))
        y = int((sh - self.h) * (0.5 + 0.45 * np.sin(t * 0.5 + 1.0)))
        return Frame(self.scene[y : y + self.h, x : x + self.w].copy())

    def close(self) -> None:
        pass


register("demo")(DemoSource)
