"""Simple synthetic depth scenes (uint8, larger = nearer) for tests, demos and benchmarks.

A scene is a tilted ground/wall plane plus 1-3 objects (ellipses or rectangles), each a
nearly fronto-parallel patch nearer than the plane behind it, then min-max normalised to
0..255 like Depth Anything's output.
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np


def synthetic_depth_map(rng: np.random.Generator, height: int = 64, width: int = 64) -> np.ndarray:
    """One random scene as a uint8 HxW inverse-depth map."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= max(height - 1, 1)
    xx /= max(width - 1, 1)
    # background plane: mostly nearer toward the bottom (a floor), with some tilt
    inv = 0.2 + rng.uniform(0.2, 0.6) * yy + rng.uniform(-0.2, 0.2) * xx
    for _ in range(int(rng.integers(1, 4))):
        level = rng.uniform(0.5, 1.2)
        slope = rng.uniform(-0.1, 0.1)
        mask = np.zeros((height, width), dtype=np.uint8)
        cy, cx = int(rng.integers(height // 6, height - height // 6)), int(rng.integers(width // 6, width - width // 6))
        ry, rx = int(rng.integers(height // 10, height // 4)), int(rng.integers(width // 10, width // 4))
        if rng.random() < 0.5:
            cv2.ellipse(mask, (cx, cy), (rx, ry), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        else:
            cv2.rectangle(mask, (cx - rx, cy - ry), (cx + rx, cy + ry), 1, -1)
        patch = level + slope * (yy - cy / max(height - 1, 1))
        inv = np.where(mask > 0, np.maximum(inv, patch), inv)
    inv = (inv - inv.min()) / max(float(inv.max() - inv.min()), 1e-6)
    return np.round(inv * 255).astype(np.uint8)


def synthetic_depth_maps(n: int, height: int = 64, width: int = 64, seed: int = 0) -> list[np.ndarray]:
    """``n`` scenes, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return [synthetic_depth_map(rng, height, width) for _ in range(n)]


def iter_synthetic_depth_maps(n: int, height: int = 64, width: int = 64, seed: int = 0) -> Iterator[np.ndarray]:
    """Streaming version of :func:`synthetic_depth_maps` (same maps, same order)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield synthetic_depth_map(rng, height, width)
