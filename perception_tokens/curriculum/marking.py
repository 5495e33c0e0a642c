"""One marked-point image: the per-image work of the ``marked_points`` asset, as a pure
function so it can run in-process or on Ray workers (:mod:`perception_tokens.engine`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from perception_tokens.depth import decode_png
from perception_tokens.images import BadImageError, decode_rgb
from perception_tokens.markers import PointSamplingError, choose_points, closest_point, draw_markers
from perception_tokens.sharding import shard_of

GRID = 336


def to_grid(array: np.ndarray, interpolation=cv2.INTER_AREA) -> np.ndarray:
    return cv2.resize(array, (GRID, GRID), interpolation=interpolation)


def image_seed(seed: int, image_id: str) -> int:
    return seed * 1_000_003 + shard_of(image_id, 2**31 - 1)


@dataclass(frozen=True)
class MarkingOptions:
    seed: int
    min_points: int
    max_points: int
    variants: Sequence[str]


def mark_image(dataset: str, image: dict, depth_png: bytes, opts: MarkingOptions) -> dict | str:
    """The ``marked_points`` row for one image, or the reason there is none.

    ``image``: ``image_id``, ``split``, ``image_bytes``. Seeded per image id, so the row is
    the same wherever and in whatever order it is computed."""
    rng = np.random.default_rng(image_seed(opts.seed, image["image_id"]))
    depth = to_grid(decode_png(depth_png), cv2.INTER_LINEAR)
    n = int(rng.integers(opts.min_points, opts.max_points + 1))
    variant = opts.variants[int(rng.integers(len(opts.variants)))]
    try:
        points = choose_points(depth, n, rng)
    except PointSamplingError as exc:
        return f"no valid points: {exc.reason}"
    try:
        rgb = decode_rgb(image["image_bytes"])
    except BadImageError as exc:
        return f"image does not decode: {exc.reason}"
    marked, labels = draw_markers(to_grid(rgb), points, variant=variant)
    png = cv2.imencode(".png", cv2.cvtColor(marked, cv2.COLOR_RGB2BGR))[1].tobytes()
    return {
        "marked_id": f"{dataset}:{image['image_id']}:{variant}{n}", "dataset": dataset, "split": image["split"],
        "image_id": image["image_id"], "variant": variant, "n_points": n,
        "letters": [p.letter for p in points], "xs": [p.x for p in points], "ys": [p.y for p in points],
        "depth_values": [int(p.depth_value) for p in points], "answer": closest_point(points),
        "labels_inside": all(b.inside(GRID, GRID) for b in labels), "marked_png": png,
    }


class MarkingWorker:
    """Engine worker: a batch of ``(dataset, image, depth_png)`` -> ``(dataset, image_id, row or
    reject reason)``, in order."""

    def __init__(self, opts: MarkingOptions):
        self.opts = opts

    def __call__(self, batch):
        return [(dataset, image["image_id"], mark_image(dataset, image, depth_png, self.opts))
                for dataset, image, depth_png in batch]
