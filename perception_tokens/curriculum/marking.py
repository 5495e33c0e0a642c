"""One marked-point image: the per-image work of the ``marked_points`` asset, as a pure
function so it can run in-process or on Ray workers (:mod:`perception_tokens.engine`)."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from perception_tokens import aurora_marks
from perception_tokens.depth import decode_png
from perception_tokens.images import BadImageError, decode_rgb
from perception_tokens.markers import PointSamplingError, choose_points, closest_point, draw_markers
from perception_tokens.buckets import hash_bucket

GRID = 336


def to_grid(array: np.ndarray, interpolation=cv2.INTER_AREA) -> np.ndarray:
    return cv2.resize(array, (GRID, GRID), interpolation=interpolation)


def image_seed(seed: int, image_id: str) -> int:
    return seed * 1_000_003 + hash_bucket(image_id, 2**31 - 1)


@dataclass(frozen=True)
class MarkingOptions:
    seed: int
    min_points: int
    max_points: int
    variants: Sequence[str]
    style: str = "project"  # "aurora": add_marks_ade.ipynb's sampling and drawing (aurora_marks)
    # longer side / shorter side beyond which an image is not marked (curriculum.marked_max_aspect_ratio)
    max_aspect_ratio: float | None = 4.0


def aspect_ratio_problem(image: dict, limit: float | None) -> str | None:
    """Why ``image`` is too elongated to be marked, or None. Both styles squeeze the image into a
    square (336 or 300 px): a 20000x1 strip would become a question about smeared pixels.
    Uses the row's ``width``/``height`` when present, else the image header."""
    if limit is None:
        return None
    width, height = image.get("width"), image.get("height")
    if width is None or height is None:
        try:
            with Image.open(io.BytesIO(image["image_bytes"])) as im:  # header only, no decode
                width, height = im.size
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            return f"image does not decode: {exc}"
    if min(width, height) <= 0:
        return f"image is {width}x{height}: nothing to mark"
    ratio = max(width, height) / min(width, height)
    if ratio > limit:
        return (f"aspect ratio {ratio:.1f}:1 ({width}x{height}) is beyond curriculum.marked_max_aspect_ratio {limit:g}: "
                "squeezed into a square, its points and labels would be meaningless")
    return None


def mark_image(dataset: str, image: dict, depth_png: bytes, opts: MarkingOptions) -> dict | str:
    """The ``marked_points`` row for one image, or the reason there is none.

    ``image``: ``image_id``, ``split``, ``image_bytes`` (and ``width``, ``height`` when known).
    Seeded per image id, so the row is the same wherever and in whatever order it is computed."""
    if why := aspect_ratio_problem(image, opts.max_aspect_ratio):
        return why
    if opts.style == "aurora":
        try:
            return aurora_marked_row(dataset, image, depth_png, opts.seed)
        except PointSamplingError as exc:
            return f"no valid points: {exc.reason}"
        except (OSError, ValueError, Image.DecompressionBombError) as exc:  # PIL's errors for unreadable bytes
            return f"image does not decode: {exc}"
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


def aurora_marked_row(dataset: str, img: dict, depth_png: bytes, seed: int) -> dict:
    """add_marks_ade.ipynb cells 2 and 4 for one image, with its own seeded ``random.Random``
    (the notebook runs unseeded over all images in one stream; one stream per image keeps a
    shard's rows independent of the others). ``img["given_marks"]`` (an ``AuroraMarks`` from the
    reference's ``point_label_mappings.json``) is drawn as it is, without sampling. Raises
    PointSamplingError."""
    marks = img.get("given_marks")
    if marks is None:
        rng = random.Random(image_seed(seed, img["image_id"]))
        marks = aurora_marks.mark_images([aurora_marks.depth_array(depth_png)], rng)[0]
    if isinstance(marks, PointSamplingError):
        raise marks
    rgb = aurora_marks.resize_like_notebook(img["image_bytes"], "RGB")
    buf = io.BytesIO()
    # add_marks_ade.ipynb cell 4: img.save(f"marked_images4/{f}") with ADE20K's .jpg name, i.e.
    # JPEG at PIL's default quality (75): the reference trains on those compressed pixels
    aurora_marks.draw_marks(rgb, marks).save(buf, format="JPEG")
    # label boxes start 26 px above the point: inside the image only when y >= 26 (the reference does not move them)
    inside = all(y - aurora_marks.LABEL_OFFSET_Y - aurora_marks.LABEL_MARGIN >= 0 for _, y in marks.coordinates)
    return {"marked_id": f"{dataset}:{img['image_id']}:aurora{len(marks.letters)}", "dataset": dataset, "split": img["split"],
            "image_id": img["image_id"], "variant": "aurora", "n_points": len(marks.letters), "letters": list(marks.letters),
            "xs": [x for x, _ in marks.coordinates], "ys": [y for _, y in marks.coordinates],
            "depth_values": [int(d) for d in marks.depths], "answer": marks.answer, "labels_inside": inside,
            "marked_png": buf.getvalue()}


class MarkingWorker:
    """Engine worker: a batch of ``(dataset, image, depth_png)`` -> ``(dataset, image_id, row or
    reject reason)``, in order."""

    def __init__(self, opts: MarkingOptions):
        self.opts = opts

    def __call__(self, batch):
        return [(dataset, image["image_id"], mark_image(dataset, image, depth_png, self.opts))
                for dataset, image, depth_png in batch]
