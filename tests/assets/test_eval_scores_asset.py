"""eval_scores from a given eval_predictions table: exact accuracies, baselines and the paper's
numbers per run, mode, ablation and subset; a later run is appended, an earlier one never rescored."""

from __future__ import annotations

import math

import pytest

from asset_unit_helpers import make_settings, materialization_metadata, materialize_asset, read_rows, write_input
from perception_tokens.schemas import EVAL_PREDICTION_SCHEMA


def _pred(run, started, benchmark, subset, qid, mode, ablation, pred, gold, *, letters=("A", "B", "C"), answer_type="letter", error=None):
    return {"eval_run_id": run, "run_started_at": started, "model_id": "adapter-1", "model_kind": "adapter", "benchmark": benchmark,
            "subset": subset, "question_id": qid, "mode": mode, "ablation": ablation, "constrained": True, "prompt_text": "q",
            "raw_output": "" if pred is None else f"({pred})", "pred": pred, "gold": gold, "correct": pred == gold,
            "answer_type": answer_type, "valid_letters": list(letters) if answer_type == "letter" else [], "depth_spans": [],
            "depth_spans_valid": [], "n_boxes": 0, "n_new_tokens": 5, "latency_s": 0.1, "error": error, "image_file": f"{qid}.jpg",
            "extra_json": "{}"}


RUN_1 = [
    _pred("r1", "2026-01-01T00:00:00", "HardBLINK", "3points", "h1", "cot", "normal", "A", "A"),
    _pred("r1", "2026-01-01T00:00:00", "HardBLINK", "3points", "h2", "cot", "normal", "B", "C"),
    _pred("r1", "2026-01-01T00:00:00", "HardBLINK", "3points", "h3", "cot", "normal", None, "B"),  # unparsed: wrong
    _pred("r1", "2026-01-01T00:00:00", "HardBLINK", "3points", "h4", "cot", "normal", "C", "C"),
    _pred("r1", "2026-01-01T00:00:00", "HardBLINK", "3points", "h5", "cot", "normal", None, "A", error="no oracle tokens"),
    _pred("r1", "2026-01-01T00:00:00", "BLINK", "Relative_Depth", "b1", "direct", "none", "A", "A", letters=("A", "B")),
    _pred("r1", "2026-01-01T00:00:00", "BLINK", "Relative_Depth", "b2", "direct", "none", "B", "A", letters=("A", "B")),
    _pred("r1", "2026-01-01T00:00:00", "BLINK", "Relative_Depth", "b3", "direct", "none", "A", "A", letters=("A", "B")),
    _pred("r1", "2026-01-01T00:00:00", "BLINK-Count", "count", "c1", "direct", "none", "3", "3", answer_type="number"),
    _pred("r1", "2026-01-01T00:00:00", "BLINK-Count", "count", "c2", "direct", "none", "2", "4", answer_type="number"),
]
RUN_2 = [_pred("r2", "2026-01-02T00:00:00", "HardBLINK", "3points", q, "cot", "normal", p, "A") for q, p in (("h1", "A"), ("h2", "A"))]

def _nan_as_none(rows):
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


COLUMNS = ("eval_run_id", "mode", "ablation", "benchmark", "subset", "n", "n_not_run", "n_correct", "n_unparsed")


def test_eval_scores_exact_accuracies_and_history(tmp_path):
    settings = make_settings(tmp_path)
    write_input(settings, "eval_predictions", EVAL_PREDICTION_SCHEMA, RUN_1)
    first = materialize_asset(settings, "eval_scores")
    scores = read_rows(settings, "eval_scores")

    assert [tuple(s[c] for c in COLUMNS) for s in scores] == [
        ("r1", "cot", "normal", "HardBLINK", "3points", 4, 1, 2, 1),
        ("r1", "direct", "none", "BLINK", "Relative_Depth", 3, 0, 2, 0),
        ("r1", "direct", "none", "BLINK-Count", "count", 2, 0, 1, 0),
    ]
    hard, blink, count = scores
    assert hard["accuracy_pct"] == 50.0
    assert hard["chance_pct"] == pytest.approx(100 / 3)
    assert hard["majority_pct"] == 50.0  # gold C twice in four
    assert (hard["paper_llava15_13b_pct"], hard["paper_aurora_pct"]) == (35.5, 66.9)
    assert blink["accuracy_pct"] == pytest.approx(200 / 3)
    assert (blink["chance_pct"], blink["majority_pct"]) == (50.0, 100.0)
    assert (blink["paper_llava15_13b_pct"], blink["paper_aurora_pct"]) == (54.0, 64.5)
    assert count["accuracy_pct"] == 50.0
    assert math.isnan(count["chance_pct"]) and (count["paper_llava15_13b_pct"], count["paper_aurora_pct"]) == (34.7, 45.5)
    for s in scores:
        assert s["ci_low_pct"] <= s["accuracy_pct"] <= s["ci_high_pct"]
    meta = materialization_metadata(first, "eval_scores")
    assert meta["runs_scored"] == 1
    assert "| r1 |" in meta["scores"] and "| 3points |" in meta["scores"]

    # a second evaluation run appended to the predictions: only it is scored, after the first run's rows
    write_input(settings, "eval_predictions", EVAL_PREDICTION_SCHEMA, RUN_1 + RUN_2)
    second = materialize_asset(settings, "eval_scores")
    history = read_rows(settings, "eval_scores")
    assert _nan_as_none(history[:3]) == _nan_as_none(scores)  # the first run's rows as they were
    assert [tuple(s[c] for c in COLUMNS) for s in history[3:]] == [("r2", "cot", "normal", "HardBLINK", "3points", 2, 0, 2, 0)]
    assert history[3]["accuracy_pct"] == 100.0
    assert materialization_metadata(second, "eval_scores")["runs_scored"] == 1


def test_mask_predictions_get_ciou_and_giou_rows_and_a_table(tmp_path):
    import json

    import numpy as np

    from perception_tokens.masks import mask_to_rle

    gold = np.zeros((8, 8), bool)
    gold[:4, :4] = True  # 16 pixels
    half = np.zeros((8, 8), bool)
    half[:4, :2] = True  # 8 of them

    def mask_pred(qid, subset, pred_mask):
        row = _pred("r1", "2026-01-01T00:00:00", "RefCOCO-RES", subset, qid, "cot", "normal", "[SEG]" if pred_mask is not None else None,
                    json.dumps(mask_to_rle(gold)), answer_type="mask")
        return {**row, "correct": False, "pred_mask": None if pred_mask is None else mask_to_rle(pred_mask)}

    preds = [mask_pred("1", "refcoco_val", gold), mask_pred("2", "refcoco_val", half), mask_pred("3", "refcocog_test", None)]
    settings = make_settings(tmp_path)
    write_input(settings, "eval_predictions", EVAL_PREDICTION_SCHEMA, RUN_1[:4] + preds)
    result = materialize_asset(settings, "eval_scores")
    scores = {s["subset"]: s for s in read_rows(settings, "eval_scores")}
    val, test = scores["refcoco_val"], scores["refcocog_test"]
    assert (val["n"], val["n_unparsed"], val["ciou_pct"], val["giou_pct"]) == (2, 0, pytest.approx(75.0), pytest.approx(75.0))
    assert (test["n"], test["n_unparsed"], test["ciou_pct"], test["giou_pct"]) == (1, 1, 0.0, 0.0)
    assert math.isnan(val["accuracy_pct"]) and val["n_correct"] is None
    assert scores["3points"]["ciou_pct"] is None and scores["3points"]["accuracy_pct"] == 50.0
    meta = materialization_metadata(result, "eval_scores")
    assert "| refcoco_val |" in meta["mask_scores"] and "ciou_pct" in meta["mask_scores"]
    assert "refcoco_val" not in meta["scores"]  # the accuracy table and chart are the letter / number answers'
