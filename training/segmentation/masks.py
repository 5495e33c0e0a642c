"""Ground-truth masks of the records: COCO RLE (``{"size": [h, w], "counts": str}``) decoded by pycocotools."""

from __future__ import annotations

from typing import Any

import numpy as np


class MaskError(ValueError):
    """A record's ``mask_rle`` that cannot be decoded; the message names the record and the problem."""


def decode_mask_rle(rle: Any, where: str = "record") -> np.ndarray:
    """``mask_rle`` -> a ``[h, w]`` uint8 array of 0/1; a :class:`MaskError` naming ``where`` otherwise."""
    from pycocotools import mask as mask_utils

    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise MaskError(f"{where}: mask_rle must be a dict with exactly 'size' and 'counts', got {_describe(rle)}")
    size, counts = rle["size"], rle["counts"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise MaskError(f"{where}: mask_rle size must be [height, width] of positive integers, got {size!r}")
    if not isinstance(counts, (str, bytes)) or not counts:
        raise MaskError(f"{where}: mask_rle counts must be a non-empty compressed RLE string")
    encoded = counts.encode("ascii", "strict") if isinstance(counts, str) else counts
    # pycocotools does not check that the runs add up to h*w: check it by re-encoding.
    try:
        mask = mask_utils.decode({"size": [int(size[0]), int(size[1])], "counts": encoded})
    except Exception as exc:  # pycocotools raises bare errors on malformed strings
        raise MaskError(f"{where}: mask_rle counts do not decode ({exc})") from exc
    if mask_utils.encode(np.asfortranarray(mask))["counts"] != encoded:
        raise MaskError(f"{where}: mask_rle counts do not describe a {size[0]}x{size[1]} mask")
    return mask.astype(np.uint8)


def encode_mask_rle(mask: np.ndarray) -> dict[str, Any]:
    """A ``[h, w]`` 0/1 array -> ``{"size": [h, w], "counts": str}`` (the records' form)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _describe(value: Any) -> str:
    return f"keys {sorted(value)}" if isinstance(value, dict) else type(value).__name__
