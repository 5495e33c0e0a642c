"""Referring-segmentation scores from RLE masks: cIoU and gIoU per subset, and overlay pictures.

- **cIoU** (cumulative IoU, the RefCOCO/+/g number LISA, Sa2VA and Perceptio report): the sum of
  intersections over the sum of unions across every expression of a split, so large objects
  weigh more.
- **gIoU** (generalised IoU): the mean of the per-expression IoUs.

An expression with no predicted mask (the model emitted no ``[SEG]``, or failed) counts as an
empty prediction: intersection 0, union the ground truth's area, IoU 0. Both masks are COCO
compressed RLE (:mod:`perception_tokens.masks`); areas and intersections are computed on the
RLE by pycocotools, without decoding to dense arrays.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterable

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from evaluation.stats import bootstrap_ratio_ci
from perception_tokens.masks import check_rle, rle_to_mask

__all__ = ["intersection_union", "segmentation_scores", "overlay_png", "overlay_examples", "prediction_overlays", "gold_mask"]


def _coco(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def gold_mask(row: dict) -> dict:
    """The ground-truth RLE of a mask-benchmark row (``gold`` holds it as JSON)."""
    gold = row["gold"]
    return check_rle(json.loads(gold) if isinstance(gold, str) else gold)


def intersection_union(pred: dict | None, gold: dict) -> tuple[int, int]:
    """Pixel counts (|pred ∩ gold|, |pred ∪ gold|); ``pred=None`` is an empty mask.

    Raises ValueError when the predicted mask is not the ground truth's size (a model must
    predict at the image's resolution)."""
    g = _coco(check_rle(gold))
    gold_area = int(mask_utils.area(g))
    if pred is None:
        return 0, gold_area
    p = _coco(check_rle(pred))
    if p["size"] != g["size"]:
        raise ValueError(f"predicted mask is {p['size'][0]}x{p['size'][1]}, the ground truth {g['size'][0]}x{g['size'][1]}")
    inter = int(mask_utils.area(mask_utils.merge([p, g], intersect=True)))
    return inter, int(mask_utils.area(p)) + gold_area - inter


def segmentation_scores(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """cIoU and gIoU (percent) per (benchmark, subset) from rows with ``gold`` (RLE JSON) and
    ``pred_mask`` (RLE dict or None). A row whose union is empty (empty GT and prediction)
    scores IoU 1 in gIoU and adds nothing to cIoU. ``*_ci_low`` / ``*_ci_high``: the 95% bootstrap
    interval of each, resampling the subset's questions (:func:`evaluation.stats.bootstrap_ratio_ci`)."""
    parts: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for row in rows:
        parts[(row["benchmark"], row["subset"])].append(intersection_union(row.get("pred_mask"), gold_mask(row)))
    out = []
    for (benchmark, subset), iu in sorted(parts.items()):
        inter = sum(i for i, _ in iu)
        union = sum(u for _, u in iu)
        per_sample = [i / u if u else 1.0 for i, u in iu]
        ciou_ci = bootstrap_ratio_ci([i for i, _ in iu], [u for _, u in iu])
        giou_ci = bootstrap_ratio_ci(per_sample, [1.0] * len(per_sample))
        out.append({
            "benchmark": benchmark, "subset": subset, "n": len(iu),
            "ciou": 100.0 * inter / union if union else 100.0,
            "giou": 100.0 * sum(per_sample) / len(per_sample),
            "ciou_ci_low": ciou_ci[0], "ciou_ci_high": ciou_ci[1], "giou_ci_low": giou_ci[0], "giou_ci_high": giou_ci[1],
        })
    return out


_GT_COLOUR = np.array([0, 200, 0], dtype=np.float32)  # RGB green
_PRED_COLOUR = np.array([230, 40, 40], dtype=np.float32)  # RGB red


def _tint(rgb: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    out = rgb.astype(np.float32)
    out[mask] = 0.45 * out[mask] + 0.55 * colour
    edges = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool)
    out[edges] = colour
    return out.clip(0, 255).astype(np.uint8)


def overlay_png(image_rgb: np.ndarray, gold: dict, pred: dict | None, *, caption: str | None = None) -> bytes:
    """A PNG of three panels side by side: the image, the ground truth (green) and the
    prediction (red; the bare image when there is none), for an asset's metadata."""
    h, w = image_rgb.shape[:2]
    gold_m = rle_to_mask(gold)
    if gold_m.shape != (h, w):
        raise ValueError(f"ground-truth mask is {gold_m.shape}, the image {h}x{w}")
    pred_m = rle_to_mask(pred) if pred is not None else np.zeros((h, w), bool)
    if pred_m.shape != (h, w):
        raise ValueError(f"predicted mask is {pred_m.shape}, the image {h}x{w}")
    gap = np.full((h, 4, 3), 255, np.uint8)
    panels = np.concatenate([image_rgb, gap, _tint(image_rgb, gold_m, _GT_COLOUR), gap,
                             _tint(image_rgb, pred_m, _PRED_COLOUR)], axis=1)
    return captioned_png(panels, caption)


def captioned_png(panels: np.ndarray, caption: str | None) -> bytes:
    """RGB panels as PNG bytes, under an 18-px caption bar when ``caption`` is given."""
    if caption:
        bar = np.full((18, panels.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, caption[:90], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        panels = np.concatenate([bar, panels], axis=0)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(panels, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("OpenCV could not encode the overlay as PNG")
    return buf.tobytes()


def overlay_examples(rows: Iterable[dict[str, Any]], n: int = 4) -> list[tuple[str, bytes]]:
    """``(caption, PNG)`` overlays of the first ``n`` rows by (subset, question id): rows of a mask
    benchmark with ``image_bytes``, ``gold`` and ``pred_mask``, for an asset's metadata
    (``pipeline_lib.metadata.png_markdown``)."""
    from perception_tokens.images import decode_rgb

    picked = sorted(rows, key=lambda r: (r["subset"], str(r["question_id"])))[:n]
    out = []
    for r in picked:
        gold = gold_mask(r)
        inter, union = intersection_union(r.get("pred_mask"), gold)
        caption = f"{r['subset']} {r['question_id']}: {r['question']} (IoU {100.0 * inter / union if union else 100.0:.0f}%)"
        out.append((caption, overlay_png(decode_rgb(r["image_bytes"]), gold, r.get("pred_mask"), caption=caption)))
    return out


def prediction_overlays(predictions: Iterable[dict[str, Any]], benchmark_rows: Iterable[dict[str, Any]],
                        n: int = 4) -> list[tuple[str, bytes]]:
    """:func:`overlay_examples` of the mask predictions (``eval_predictions`` rows, ``normal`` ablation), each
    joined to its benchmark row for the image (predictions do not keep image bytes)."""
    wanted = {(p["benchmark"], p["subset"], str(p["question_id"])): p for p in predictions
              if p.get("answer_type") == "mask" and p.get("ablation") == "normal" and not p.get("error")}
    joined = []
    for r in benchmark_rows:
        p = wanted.get((r["benchmark"], r["subset"], str(r["question_id"])))
        if p is not None:
            joined.append({**r, "pred_mask": p.get("pred_mask")})
    return overlay_examples(joined, n)
