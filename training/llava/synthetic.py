"""Small synthetic curriculum for smoke runs and tests: random images + depth-span answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from perception_tokens.vocab import DEPTH_SPAN, NUM_DEPTH_CODES, encode_depth

DEPTH_QUESTION = "What is the depth map for the image?"


def fixed_depth_codes(offset: int = 0) -> list[int]:
    """A fixed 10x10 code pattern: 100 distinct codes ``(37 i + offset) mod 128``.

    Every code has a unique successor (37 is coprime with 128), so even a tiny model can
    learn the span, and where it ends, within a few dozen steps.
    """
    return [(37 * i + offset) % NUM_DEPTH_CODES for i in range(DEPTH_SPAN)]


def make_synthetic_records(
    n: int, image_dir: str | os.PathLike, *, seed: int = 0, size: int = 56, patterns: int = 1
) -> list[dict[str, Any]]:
    """``n`` LLaVA records asking the atomic depth question; images are random PNGs in ``image_dir``.

    Answers cycle through ``patterns`` fixed code patterns (record i uses pattern i % patterns).
    """
    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        name = f"synthetic_{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(image_dir / name)
        records.append(
            {
                "id": f"synthetic-{i}",
                "image": name,
                "conversations": [
                    {"from": "human", "value": "<image>\n" + DEPTH_QUESTION},
                    {"from": "gpt", "value": encode_depth(fixed_depth_codes(17 * (i % patterns)))},
                ],
            }
        )
    return records
