"""Small hand-made segmentation records: a coloured square on a grey image, its mask as RLE, a [SEG] answer."""

from pathlib import Path

import numpy as np
from PIL import Image

from perception_tokens.vocab import encode_depth
from training.llava.synthetic import fixed_depth_codes
from training.segmentation.masks import encode_mask_rle


def square_records(root: Path, n: int = 4, size: int = 112) -> list[dict]:
    """``n`` images, each with one red square at its own place, and its mask."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        pixels = np.full((size, size, 3), 128, np.uint8)
        mask = np.zeros((size, size), np.uint8)
        y, x = 10 + 20 * i, 60 - 15 * i
        pixels[y : y + 40, x : x + 40] = (220, 30, 30)
        mask[y : y + 40, x : x + 40] = 1
        Image.fromarray(pixels).save(images / f"sq{i}.png")
        answer = f"[SEG] {encode_depth(fixed_depth_codes(i))} The red square."
        records.append({"id": f"sq{i}", "image": f"sq{i}.png", "mask_rle": encode_mask_rle(mask),
                        "conversations": [{"from": "human", "value": "<image>\nSegment the red square."},
                                          {"from": "gpt", "value": answer}]})
    return records
