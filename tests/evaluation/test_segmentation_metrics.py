"""cIoU / gIoU from RLE masks, worked out by hand, and the overlay picture."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from evaluation.segmentation_metrics import intersection_union, overlay_png, segmentation_scores
from perception_tokens.masks import mask_to_rle


def _box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _row(subset, gold, pred):
    return {"benchmark": "RefCOCO-RES", "subset": subset, "gold": json.dumps(mask_to_rle(gold)),
            "pred_mask": None if pred is None else mask_to_rle(pred)}


def test_ciou_weighs_large_objects_giou_weighs_each_expression():
    rows = [
        _row("refcoco_val", _box(10, 10, 0, 6, 0, 6), _box(10, 10, 0, 6, 0, 6)),  # 36 px, exact: I 36 U 36
        _row("refcoco_val", _box(10, 10, 0, 2, 0, 2), _box(10, 10, 8, 10, 8, 10)),  # 4 px, disjoint: I 0 U 8
        _row("refcoco_val", _box(10, 12, 2, 6, 2, 6), _box(10, 12, 2, 6, 2, 4)),  # 16 px, half: I 8 U 16
    ]
    [score] = segmentation_scores(rows)
    assert score["n"] == 3
    assert score["ciou"] == pytest.approx(100 * 44 / 60)  # (36 + 0 + 8) / (36 + 8 + 16)
    assert score["giou"] == pytest.approx(100 * 1.5 / 3)  # (1 + 0 + 0.5) / 3


def test_scores_are_per_subset_and_a_missing_prediction_is_an_empty_mask():
    gold = _box(8, 8, 0, 4, 0, 4)
    rows = [_row("refcocog_val", gold, gold), _row("refcocog_test", gold, None)]
    scores = {s["subset"]: s for s in segmentation_scores(rows)}
    assert scores["refcocog_val"]["ciou"] == scores["refcocog_val"]["giou"] == 100.0
    assert scores["refcocog_test"]["ciou"] == scores["refcocog_test"]["giou"] == 0.0
    assert intersection_union(None, mask_to_rle(gold)) == (0, 16)


def test_a_prediction_of_another_size_is_an_error():
    with pytest.raises(ValueError, match="predicted mask is 8x9, the ground truth 8x8"):
        intersection_union(mask_to_rle(_box(8, 9, 0, 2, 0, 2)), mask_to_rle(_box(8, 8, 0, 2, 0, 2)))


def test_overlay_shows_image_ground_truth_and_prediction_side_by_side():
    h, w = 20, 30
    image = np.full((h, w, 3), 100, np.uint8)
    gold, pred = _box(h, w, 5, 15, 5, 15), _box(h, w, 5, 15, 18, 28)
    png = overlay_png(image, mask_to_rle(gold), mask_to_rle(pred))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert out.shape == (h, 3 * w + 8, 3)
    first, second, third = out[:, :w], out[:, w + 4:2 * w + 4], out[:, 2 * w + 8:]
    assert np.array_equal(first, image)
    g = second[10, 10].astype(int)  # inside the ground truth: tinted green
    assert g[1] > g[0] + 40 and g[1] > g[2] + 40
    assert np.array_equal(second[10, 22], image[10, 22])  # outside it: the image
    r = third[10, 22].astype(int)  # inside the prediction: tinted red
    assert r[0] > r[1] + 40 and r[0] > r[2] + 40
    assert np.array_equal(third[10, 10], image[10, 10])


def test_prediction_overlays_join_each_prediction_to_its_image():
    from evaluation.segmentation_metrics import prediction_overlays
    from perception_tokens.images import decode_rgb, encode_png

    gold = _box(10, 12, 2, 6, 2, 8)
    rgb = np.full((10, 12, 3), 90, np.uint8)
    bench = [{"benchmark": "RefCOCO-RES", "subset": "refcoco_val", "question_id": q, "question": f"thing {q}",
              "gold": json.dumps(mask_to_rle(gold)), "image_bytes": encode_png(rgb)} for q in ("1", "2")]
    preds = [{"benchmark": "RefCOCO-RES", "subset": "refcoco_val", "question_id": "1", "answer_type": "mask", "ablation": "normal",
              "error": None, "pred_mask": mask_to_rle(gold)},
             {"benchmark": "RefCOCO-RES", "subset": "refcoco_val", "question_id": "2", "answer_type": "mask", "ablation": "none",
              "error": None, "pred_mask": None}]  # not the normal ablation: not shown
    [(caption, png)] = prediction_overlays(preds, bench, n=4)
    assert caption == "refcoco_val 1: thing 1 (IoU 100%)"
    picture = decode_rgb(png)
    assert picture.shape[1] == 3 * 12 + 2 * 4  # image | ground truth | prediction
