"""Object masks as COCO compressed RLE: ``{"size": [h, w], "counts": str}``.

Masks are stored this way in every table (the referred object's ground truth in
``refcoco_refs``, the GT of ``benchmark_refcoco_res``, a model's predicted mask in
``eval_predictions.pred_mask``): a few hundred bytes per object instead of a dense
HxW array in a row. Encoding and decoding are pycocotools' (``frPyObjects``, ``merge``,
``encode``, ``decode``), the library the COCO annotations are made for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["MaskFormatError", "segmentation_to_rle", "mask_to_rle", "rle_to_mask", "check_rle"]


class MaskFormatError(ValueError):
    """A COCO segmentation (polygon list or RLE) that cannot be turned into a mask; the message says why."""


def _plain(rle: dict) -> dict:
    """pycocotools' RLE with ``counts`` as str (it returns bytes) and ``size`` as a list of ints."""
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


# how far (pixels) a polygon vertex may lie outside the image: annotation tools put vertices on
# the border, a little past it at most; far-away vertices would make pycocotools' rasteriser
# walk (and allocate for) edges of any length
_POLYGON_MARGIN = 2.0


def _polygon_problem(poly: Any, index: int, height: int, width: int) -> str | None:
    if not isinstance(poly, (list, tuple)):
        return f"polygon {index} is not a list of coordinates"
    if len(poly) < 6 or len(poly) % 2:
        return f"polygon {index} has {len(poly)} coordinates; a polygon needs an even number, at least 6 (3 points)"
    for v in poly:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            return f"polygon {index} has a coordinate {v!r} that is not a finite number"
    for x, y in zip(poly[0::2], poly[1::2]):
        if not (-_POLYGON_MARGIN <= x <= width + _POLYGON_MARGIN and -_POLYGON_MARGIN <= y <= height + _POLYGON_MARGIN):
            return f"polygon {index} has a point ({x}, {y}) outside the {width}x{height} image"
    return None


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict:
    """The compressed RLE of a COCO annotation's ``segmentation`` on an image of ``height`` x ``width``.

    Accepts the three COCO forms: a list of polygons (merged into one mask, as
    ``COCO.annToRLE`` does), an uncompressed RLE (``counts`` a list, crowd annotations) and a
    compressed RLE (``counts`` a string). Raises :class:`MaskFormatError` with the reason for
    anything else (odd or too few coordinates, non-numbers, an RLE of another size, an empty mask).
    """
    if isinstance(segmentation, list):
        if not segmentation:
            raise MaskFormatError("segmentation has no polygons")
        for i, poly in enumerate(segmentation):
            problem = _polygon_problem(poly, i, height, width)
            if problem is not None:
                raise MaskFormatError(problem)
        polys = [[float(v) for v in p] for p in segmentation]
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(segmentation, dict) and {"size", "counts"} <= set(segmentation):
        size = segmentation["size"]
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and list(size) == [height, width]):
            raise MaskFormatError(f"RLE size {size!r} is not the image size [{height}, {width}]")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts) or sum(counts) != height * width:
                raise MaskFormatError(f"uncompressed RLE counts are not non-negative ints summing to {height}x{width}")
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        elif isinstance(counts, str):
            rle = check_rle({"size": [height, width], "counts": counts})
        else:
            raise MaskFormatError(f"RLE counts is a {type(counts).__name__}, not a list or a string")
    else:
        raise MaskFormatError(f"segmentation is a {type(segmentation).__name__}, not a polygon list or an RLE")
    if int(mask_utils.area(rle)) == 0:
        raise MaskFormatError("segmentation covers no pixel of the image")
    return _plain(rle)


def mask_to_rle(mask: np.ndarray) -> dict:
    """The compressed RLE of a 2-D bool/0-1 mask."""
    if mask.ndim != 2:
        raise MaskFormatError(f"expected a 2-D mask, got shape {mask.shape}")
    return _plain(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))


def check_rle(rle: Any) -> dict:
    """``rle`` as a plain compressed RLE, or :class:`MaskFormatError` saying what is wrong with it."""
    if not isinstance(rle, dict) or not {"size", "counts"} <= set(rle):
        raise MaskFormatError(f"an RLE is a dict with size and counts, got {type(rle).__name__}")
    size, counts = rle["size"], rle["counts"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size)):
        raise MaskFormatError(f"RLE size {size!r} is not [height, width] of positive ints")
    if not isinstance(counts, (str, bytes)) or not counts:
        raise MaskFormatError("RLE counts is not a non-empty compressed string")
    plain = {"size": [int(size[0]), int(size[1])], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    # checked before pycocotools sees it: its C decoder writes runs past h*w without looking
    if _run_total(plain) != int(size[0]) * int(size[1]):
        raise MaskFormatError(f"RLE counts do not cover the {size[0]}x{size[1]} image exactly")
    return _plain(plain)


def _run_total(rle: dict) -> int:
    """Sum of the run lengths of a compressed RLE (COCO's LEB128-like string, maskApi.c rleFrString)."""
    s = rle["counts"]
    s = s.decode("ascii") if isinstance(s, bytes) else s
    total, pos, runs = 0, 0, []
    while pos < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[pos]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
            if more and pos >= len(s):
                raise MaskFormatError("RLE counts string ends inside a run")
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
        if x < 0:
            raise MaskFormatError("RLE counts decode to a negative run")
        total += x
    return total


def rle_to_mask(rle: Any) -> np.ndarray:
    """The bool HxW mask of a compressed RLE (checked first)."""
    plain = check_rle(rle)
    return mask_utils.decode({"size": plain["size"], "counts": plain["counts"].encode("ascii")}).astype(bool)
