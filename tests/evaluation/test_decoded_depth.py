"""Depth decoded from the model's own tokens: map errors, reading marked points off a map, and the rows
built from prediction rows with a real (tiny, randomly initialised) VQ-VAE decoder."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.decoded_depth import (DECODED_FIELDS, closest_on_map, decoded_depth_rows, decoded_depth_summary, map_errors,
                                      vqvae_decoder)
from perception_tokens.vocab import encode_depth


def test_map_errors_on_the_teachers_scale():
    teacher = np.full((4, 4), 255, np.uint8)
    teacher[0, 0] = 0  # the farthest pixel: left out of abs-rel (division by zero)
    decoded = np.full((4, 4), 204, np.uint8)  # 0.8 where the teacher says 1.0
    decoded[0, 0] = 0
    mse, abs_rel = map_errors(decoded, teacher)
    assert mse == pytest.approx(15 / 16 * 0.2 ** 2) and abs_rel == pytest.approx(0.2)
    assert map_errors(teacher, teacher) == (0.0, 0.0)
    with pytest.raises(ValueError, match="differ in size"):
        map_errors(decoded[:2], teacher)


def test_closest_point_is_the_largest_value_and_a_tie_is_no_answer():
    m = np.zeros((336, 336), np.uint8)
    m[10, 20], m[100, 200], m[300, 5] = 50, 240, 120  # (row y, column x)
    assert closest_on_map(m, {"A": (20, 10), "B": (200, 100), "C": (5, 300)}) == "B"
    assert closest_on_map(m, {"A": (20, 10), "B": (21, 11)}) == "A"  # 50 vs 0
    assert closest_on_map(m, {"A": (0, 0), "B": (1, 1)}) is None


@pytest.fixture(scope="module")
def decode(single_torch_thread):
    import torch

    from training.vqvae.config import tiny_config
    from training.vqvae.model import DepthVQVAE

    torch.manual_seed(0)
    return vqvae_decoder(DepthVQVAE(tiny_config()).eval())


def _pred(qid, span, gold="A", valid=True, bench=("HardBLINK", "3points"), mode="cot"):
    return {"eval_run_id": "r1", "benchmark": bench[0], "subset": bench[1], "question_id": qid, "mode": mode, "gold": gold,
            "pred": "A", "error": None, "depth_spans": [span] if span else [], "depth_spans_valid": [valid] if span else []}


def test_rows_decode_the_generated_codes_and_say_why_when_they_cannot(decode):
    codes = [(3 * k) % 128 for k in range(100)]
    decoded = decode(codes)
    assert decoded.shape == (336, 336) and decoded.dtype == np.uint8
    flat = np.argsort(decoded, axis=None)
    (y_lo, x_lo), (y_hi, x_hi) = np.unravel_index(flat[0], decoded.shape), np.unravel_index(flat[-1], decoded.shape)
    points = {"A": (x_lo, y_lo), "B": (x_hi, y_hi)}  # B sits on the decoded map's largest value: the nearest
    teacher = decoded.copy()
    preds = [_pred("1", encode_depth(codes), gold="B"), _pred("2", encode_depth(codes), gold="A"),
             _pred("3", None), _pred("4", "<DEPTH_START><DEPTH_1><DEPTH_END>", valid=False),
             _pred("5", encode_depth(codes), mode="direct"),  # not a CoT answer: no row
             _pred("6", encode_depth(codes), bench=("CV-Bench", "Count"))]  # not relative depth: no row
    rows = decoded_depth_rows(preds, decode, lambda p: teacher if p["question_id"] != "2" else None,
                              lambda p: points, variant="aurora")
    assert [r["question_id"] for r in rows] == ["1", "2", "3", "4"] and all(set(r) == set(DECODED_FIELDS) for r in rows)
    one, two, three, four = rows
    assert (one["decoded_answer"], one["decoded_correct"], one["mse"], one["abs_rel"], one["problem"]) == ("B", True, 0.0, 0.0, None)
    assert (two["decoded_answer"], two["decoded_correct"], two["mse"]) == ("B", False, None)
    assert two["problem"] == "no teacher depth for this image"
    assert three["problem"] == four["problem"] == "no valid depth span in the answer" and three["decoded_answer"] is None
    summary = decoded_depth_summary(rows)
    assert summary == [{"variant": "aurora", "benchmark": "HardBLINK", "subset": "3points", "n_answers": 4, "n_read": 2,
                        "read_accuracy_pct": 50.0, "n_measured": 1, "mean_mse": 0.0, "mean_abs_rel": 0.0}]


def test_unknown_marker_positions_still_measure_the_map(decode):
    codes = list(range(100))
    rows = decoded_depth_rows([_pred("1", encode_depth(codes))], decode, lambda p: decode(codes), lambda p: None)
    assert rows[0]["problem"] == "marker positions unknown" and rows[0]["mse"] == 0.0 and rows[0]["decoded_answer"] is None
    assert math.isnan(decoded_depth_summary(rows)[0]["read_accuracy_pct"])
