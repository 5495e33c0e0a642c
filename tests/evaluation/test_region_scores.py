"""VPT's region scores on hand boxes: IoU and IoGT (intersection over the ground-truth box), the first
region of a prediction's actions, and the bootstrap interval of a mean (fixed seed)."""

import math

import pytest

from evaluation.region_scores import box_overlap, first_region_box, region_overlap_fields, region_scores
from evaluation.stats import bootstrap_mean_ci


def test_iou_and_iogt_on_hand_boxes():
    # a 10x10 GT inside a 20x20 crop: the crop holds all of it (IoGT 1), IoU 100 / 400
    assert box_overlap([0, 0, 20, 20], [5, 5, 15, 15]) == (0.25, 1.0)
    # half of the GT: intersection 5x10 = 50, union 100 + 100 - 50
    assert box_overlap([10, 0, 20, 10], [5, 0, 15, 10]) == (50 / 150, 0.5)
    assert box_overlap([0, 0, 5, 5], [5, 5, 10, 10]) == (0.0, 0.0)  # touching corners share no pixel
    assert box_overlap([3, 4, 9, 8], [3, 4, 9, 8]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="empty"):
        box_overlap([0, 0, 5, 5], [2, 2, 2, 9])


def reencode():
    return {"kind": "reencode", "grid": None, "x_min": None, "y_min": None, "x_max": None, "y_max": None,
            "crop_left": None, "crop_top": None, "crop_right": None, "crop_bottom": None, "n_embeddings": 4,
            "answer_position": 0}


def region(box):
    left, top, right, bottom = box
    return {**reencode(), "kind": "region", "n_embeddings": None, "crop_left": left, "crop_top": top,
            "crop_right": right, "crop_bottom": bottom}


def test_the_first_region_is_scored_not_a_reencoding_or_a_later_region():
    actions = [reencode(), region([0, 0, 20, 20]), region([5, 5, 15, 15])]
    assert first_region_box(actions) == [0, 0, 20, 20]
    assert region_overlap_fields(actions, [5, 5, 15, 15]) == {"region_iou": 0.25, "region_iogt": 1.0}
    assert region_overlap_fields([reencode()], [5, 5, 15, 15]) == {"region_iou": None, "region_iogt": None}
    assert region_overlap_fields(actions, None) == {"region_iou": None, "region_iogt": None}


def test_group_scores_count_questions_with_a_box_and_with_a_region_and_skip_rows_not_run():
    rows = [{"n_actions": 2, "gt_box": [0, 0, 1, 1], "region_iou": 0.5, "region_iogt": 1.0},
            {"n_actions": 0, "gt_box": [0, 0, 1, 1], "region_iou": None, "region_iogt": None},
            {"n_actions": 1, "gt_box": None, "region_iou": None, "region_iogt": None},
            {"n_actions": None, "gt_box": [0, 0, 1, 1], "error": "image does not decode", "region_iou": None}]
    s = region_scores(rows)
    assert (s["mean_actions"], s["n_gt_box"], s["n_region"]) == (1.0, 2, 1)
    assert (s["region_iou_mean"], s["region_iou_ci_low"], s["region_iou_ci_high"]) == (0.5, 0.5, 0.5)
    assert region_scores([{"n_actions": None, "gt_box": [0, 0, 1, 1]}]) == dict.fromkeys(s)


def test_bootstrap_interval_of_a_mean():
    assert bootstrap_mean_ci([0.3] * 7) == (0.3, 0.3)
    assert all(math.isnan(v) for v in bootstrap_mean_ci([]))
    values = [0.0, 0.1, 0.2, 0.9, 1.0, 0.4, 0.35, 0.6]
    low, high = bootstrap_mean_ci(values)
    assert 0.0 < low < sum(values) / len(values) < high < 1.0
    assert bootstrap_mean_ci(values) == (low, high)  # fixed seed: the same interval every time
    wide_low, wide_high = bootstrap_mean_ci(values * 10)  # ten times the questions: a narrower interval
    assert low < wide_low < wide_high < high
