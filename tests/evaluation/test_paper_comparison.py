"""The paper comparison's pure parts: Wilson intervals, the published table, the comparison rows."""

from __future__ import annotations

import math

import pytest

from evaluation import published
from evaluation.paper_comparison import COMPARISON_FIELDS, comparison_markdown, comparison_rows, latest_run
from evaluation.stats import wilson_ci


def test_wilson_interval_matches_the_closed_form():
    # 8 of 10: the textbook Wilson 95% interval is 0.4902..0.9433
    low, high = wilson_ci(8, 10)
    assert low == pytest.approx(49.016, abs=1e-3) and high == pytest.approx(94.331, abs=1e-3)
    # at 0 and n correct the interval is not empty and stays within 0..100
    assert wilson_ci(0, 5)[0] == 0.0 and 0 < wilson_ci(0, 5)[1] < 50
    assert wilson_ci(5, 5)[1] == 100.0 and 50 < wilson_ci(5, 5)[0] < 100
    assert all(math.isnan(x) for x in wilson_ci(0, 0))
    with pytest.raises(ValueError, match="not within"):
        wilson_ci(3, 2)


def test_published_table_has_every_method_of_both_tables_with_a_source():
    rows = published.published_rows()
    depth = [r for r in rows if r["source"] == published.SOURCE_DEPTH]
    count = [r for r in rows if r["source"] == published.SOURCE_COUNT]
    assert {r["method"] for r in depth} == {"LLaVA 1.5 13B", "Fine-tuned LLaVA", "GPT-4o", "LLaVA-Aurora"}
    assert {r["method"] for r in count} == {"LLaVA 1.5 13B", "Fine-tuned LLaVA", "LLaVA-Aurora"}
    assert len(depth) == 4 * 5 and len(count) == 3 * 3
    assert published.published_accuracy("Fine-tuned LLaVA", "HardBLINK", "5points") == 41.1
    assert published.published_accuracy("LLaVA 1.5 13B", "CV-Bench", "Count") == 43.3
    assert published.published_accuracy("Fine-tuned LLaVA", "SEED-Count", "count") == 57.5
    assert published.published_accuracy("LLaVA-Aurora", *published.AVERAGE_KEY) == 61.6
    assert published.published_accuracy("GPT-4o", "CV-Bench", "Count") is None  # not in the counting table


def _pred(run, started, qid, correct, mode="direct", ablation="none", bench=("BLINK", "Relative_Depth"), error=None):
    return {"eval_run_id": run, "run_started_at": started, "benchmark": bench[0], "subset": bench[1], "question_id": qid,
            "mode": mode, "ablation": ablation, "correct": correct, "error": error}


def test_latest_run_keeps_only_the_last_evaluation():
    rows = [_pred("r1", "2026-01-01T00:00:00", "q1", True), _pred("r2", "2026-01-02T00:00:00", "q1", False)]
    assert [p["eval_run_id"] for p in latest_run(rows)] == ["r2"]
    assert latest_run([]) == []


def test_comparison_rows_pair_each_variant_with_base_and_aurora():
    qids = [f"q{i}" for i in range(10)]
    base = [_pred("b", "t", q, i < 2) for i, q in enumerate(qids)]  # 2 of 10 right
    # aurora: 8 of 10 right on its CoT answers; its direct answers must not be the ones counted
    aurora = [_pred("a", "t", q, i < 8, mode="cot", ablation="normal") for i, q in enumerate(qids)]
    aurora += [_pred("a", "t", q, False) for q in qids]
    ft = [_pred("f", "t", q, i < 5) for i, q in enumerate(qids)]
    ft.append(_pred("f", "t", "q10", False, error="not run: no image"))
    rows = comparison_rows({"base": base, "finetuned_llava": ft, "aurora": aurora},
                           {"base": ("direct", "none"), "finetuned_llava": ("direct", "none"), "aurora": ("cot", "normal")},
                           {"base": "LLaVA 1.5 13B", "finetuned_llava": "Fine-tuned LLaVA", "aurora": "LLaVA-Aurora"})
    assert [(r["benchmark"], r["subset"], r["variant"]) for r in rows] == [
        ("BLINK", "Relative_Depth", "base"), ("BLINK", "Relative_Depth", "finetuned_llava"), ("BLINK", "Relative_Depth", "aurora")]
    assert all(set(r) == set(COMPARISON_FIELDS) for r in rows)
    b, f, a = rows
    assert (b["n"], b["n_correct"], b["accuracy_pct"], b["paper_pct"]) == (10, 2, 20.0, 54.0)
    assert (a["n"], a["accuracy_pct"], a["mode"], a["paper_pct"]) == (10, 80.0, "cot", 64.5)
    assert (f["n"], f["n_not_run"], f["accuracy_pct"], f["paper_pct"]) == (10, 1, 50.0, 68.5)
    assert (a["ci_low_pct"], a["ci_high_pct"]) == pytest.approx(wilson_ci(8, 10))
    # aurora vs base: 6 questions only aurora got right, none only base: p = 2 / 2**6
    assert (a["vs_base_n_paired"], a["vs_base_only_variant"], a["vs_base_only_other"]) == (10, 6, 0)
    assert a["vs_base_p_value"] == pytest.approx(2 / 64)
    # finetuned vs aurora: 3 discordant, all aurora's: p = 2 / 8
    assert (f["vs_aurora_only_variant"], f["vs_aurora_only_other"], f["vs_aurora_p_value"]) == (0, 3, pytest.approx(0.25))
    # a variant is not tested against itself
    assert b["vs_base_p_value"] is None and a["vs_aurora_p_value"] is None
    table = comparison_markdown(rows)
    assert "| BLINK | Relative_Depth | aurora | cot/normal | 10 | 80.0 |" in table and "0.0312" in table


def test_a_variant_without_answers_on_a_subset_gets_an_empty_row():
    rows = comparison_rows({"base": [_pred("b", "t", "q1", True)], "aurora": [_pred("a", "t", "q1", True, bench=("HardBLINK", "3points"))]},
                           {"base": ("direct", "none"), "aurora": ("direct", "none")}, {"base": None, "aurora": "LLaVA-Aurora"})
    assert len(rows) == 4  # 2 subsets x 2 variants
    hb_base = next(r for r in rows if r["benchmark"] == "HardBLINK" and r["variant"] == "base")
    assert hb_base["n"] == 0 and math.isnan(hb_base["accuracy_pct"]) and math.isnan(hb_base["paper_pct"])
    hb_aurora = next(r for r in rows if r["benchmark"] == "HardBLINK" and r["variant"] == "aurora")
    assert hb_aurora["paper_pct"] == 66.9 and hb_aurora["vs_base_n_paired"] == 0 and hb_aurora["vs_base_p_value"] == 1.0


def test_a_question_answered_twice_in_one_run_is_an_error():
    with pytest.raises(ValueError, match="answered twice"):
        comparison_rows({"base": [_pred("b", "t", "q1", True), _pred("b", "t", "q1", False)]}, {"base": ("direct", "none")}, {})
