"""Pictures of VPT's region selection for an asset's metadata: the original image with the ground-truth
box (green) and the first selected region's crop box (red), beside the crop the model was shown
(scaled to the image's height)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from evaluation.region_scores import first_region_box
from evaluation.segmentation_metrics import captioned_png

GT_COLOUR = (0, 200, 0)
REGION_COLOUR = (255, 0, 0)


def region_overlay_png(image_rgb: np.ndarray, gt_box: Sequence[float] | None, crop_box: Sequence[int], *,
                       caption: str | None = None) -> bytes:
    """Two panels: the image with ``gt_box`` (green, if any) and ``crop_box`` (red) outlined, and the crop.
    Boxes ``[x0, y0, x1, y1]`` in the image's pixels, right/bottom exclusive."""
    h, w = image_rgb.shape[:2]
    left, top, right, bottom = (int(v) for v in crop_box)
    if not (0 <= left < right <= w and 0 <= top < bottom <= h):
        raise ValueError(f"crop box {list(crop_box)} is not inside the {w}x{h} image")
    marked = np.ascontiguousarray(image_rgb.copy())
    if gt_box is not None:
        gx0, gy0, gx1, gy1 = (int(round(v)) for v in gt_box)
        cv2.rectangle(marked, (gx0, gy0), (gx1 - 1, gy1 - 1), GT_COLOUR, 1)
    cv2.rectangle(marked, (left, top), (right - 1, bottom - 1), REGION_COLOUR, 1)
    crop = image_rgb[top:bottom, left:right]
    scale = h / crop.shape[0]
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), h), interpolation=cv2.INTER_NEAREST)
    panels = np.concatenate([marked, np.full((h, 4, 3), 255, np.uint8), crop], axis=1)
    return captioned_png(panels, caption)


def region_overlay_examples(predictions: Iterable[dict[str, Any]], benchmark_rows: Iterable[dict[str, Any]],
                            n: int = 3) -> list[tuple[str, bytes]]:
    """``(caption, PNG)`` for the first ``n`` predictions (questions with a ground-truth box first) that
    selected a region; images come from ``benchmark_rows`` (matched on benchmark, subset, question id)."""
    from perception_tokens.images import decode_rgb

    with_region = [p for p in predictions if first_region_box(p.get("actions")) is not None]
    with_region.sort(key=lambda p: (p.get("gt_box") is None, p["benchmark"], p["subset"], str(p["question_id"])))
    wanted = {(p["benchmark"], p["subset"], str(p["question_id"])): p for p in with_region[:n]}
    out = []
    for row in benchmark_rows:
        p = wanted.pop((row["benchmark"], row["subset"], str(row["question_id"])), None)
        if p is None:
            continue
        iou = p.get("region_iou")
        caption = f"{p['benchmark']} {p['subset']} {p['question_id']}" + (
            f": IoU {iou:.2f}, IoGT {p['region_iogt']:.2f}" if iou is not None else "")
        out.append((caption, region_overlay_png(decode_rgb(row["image_bytes"]), p.get("gt_box"),
                                                first_region_box(p["actions"]), caption=caption)))
        if not wanted:
            break
    return out
