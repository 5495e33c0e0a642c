"""VPT's region scores (arXiv 2502.17425 Table 4: IoU and IoGT of the selected region): the first region
a VPT model selected for a question (its crop box, pixels of the original image) against the
question's ground-truth box, and their means per score group with bootstrap intervals.

IoGT is the intersection over the ground-truth box's area: how much of the target the crop holds
(a crop much larger than the target still scores 1, which IoU penalises). Boxes are
``[x0, y0, x1, y1]`` with right/bottom exclusive, so a box's area is ``(x1 - x0) * (y1 - y0)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

from evaluation.stats import bootstrap_mean_ci

REGION_SCORE_FIELDS = ("mean_actions", "n_gt_box", "n_region", "region_iou_mean", "region_iou_ci_low", "region_iou_ci_high",
                       "region_iogt_mean", "region_iogt_ci_low", "region_iogt_ci_high")


def box_overlap(box: Sequence[float], gt: Sequence[float]) -> tuple[float, float]:
    """``(IoU, IoGT)`` of two ``[x0, y0, x1, y1]`` boxes; raises on an empty ground-truth box."""
    bx0, by0, bx1, by1 = (float(v) for v in box)
    gx0, gy0, gx1, gy1 = (float(v) for v in gt)
    gt_area = (gx1 - gx0) * (gy1 - gy0)
    if gt_area <= 0:
        raise ValueError(f"ground-truth box {list(gt)} is empty")
    inter = max(0.0, min(bx1, gx1) - max(bx0, gx0)) * max(0.0, min(by1, gy1) - max(by0, gy0))
    union = max(0.0, bx1 - bx0) * max(0.0, by1 - by0) + gt_area - inter
    return inter / union, inter / gt_area


def first_region_box(actions: Iterable[dict] | None) -> list[int] | None:
    """The crop box ``[left, top, right, bottom]`` of the first region action, or None."""
    for a in actions or ():
        if a.get("kind") == "region":
            return [a["crop_left"], a["crop_top"], a["crop_right"], a["crop_bottom"]]
    return None


def region_overlap_fields(actions: list[dict] | None, gt_box: Sequence[float] | None) -> dict[str, float | None]:
    """A prediction row's ``region_iou`` / ``region_iogt`` (None without a GT box or a region)."""
    box = first_region_box(actions)
    if box is None or gt_box is None:
        return {"region_iou": None, "region_iogt": None}
    iou, iogt = box_overlap(box, gt_box)
    return {"region_iou": iou, "region_iogt": iogt}


def region_scores(predictions: Sequence[dict]) -> dict[str, Any]:
    """The :data:`REGION_SCORE_FIELDS` of one score group: null for a group of non-VPT rows
    (``n_actions`` null); rows that could not be run (``error``) are left out, as in accuracy."""
    rows = [p for p in predictions if p.get("n_actions") is not None and not p.get("error")]
    if not rows:
        return dict.fromkeys(REGION_SCORE_FIELDS)
    with_gt = [p for p in rows if p.get("gt_box") is not None]
    scored = [p for p in with_gt if p.get("region_iou") is not None]
    out: dict[str, Any] = {"mean_actions": sum(p["n_actions"] for p in rows) / len(rows), "n_gt_box": len(with_gt),
                           "n_region": len(scored)}
    for name in ("region_iou", "region_iogt"):
        values = [float(p[name]) for p in scored]
        low, high = bootstrap_mean_ci(values)
        out[f"{name}_mean"] = sum(values) / len(values) if values else None
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = (None, None) if math.isnan(low) else (low, high)
    return out


def region_scores_by(predictions: Sequence[dict], by: Sequence[str]) -> dict[tuple, dict[str, Any]]:
    """:func:`region_scores` per group of the ``by`` keys (as strings, like :func:`evaluation.scoring.score`'s groups)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for p in predictions:
        groups[tuple(str(p.get(k)) for k in by)].append(p)
    return {key: region_scores(rows) for key, rows in groups.items()}


def drop_empty_region_fields(score_rows: Sequence[dict]) -> list[dict]:
    """Score rows for display: without the region columns when no row has them (a run of a non-VPT model)."""
    if any(r.get("mean_actions") is not None for r in score_rows):
        return list(score_rows)
    return [{k: v for k, v in r.items() if k not in REGION_SCORE_FIELDS} for r in score_rows]
