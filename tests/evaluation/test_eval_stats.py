"""Bootstrap intervals on every score row, McNemar's exact test, and the paired comparison of runs."""

import math

import pytest

from evaluation.compare import compare_runs, unmatched_groups
from evaluation.scoring import score
from evaluation.stats import bootstrap_accuracy_ci, bootstrap_stratified_ci, mcnemar_exact


def test_bootstrap_interval_is_fixed_by_the_seed_and_brackets_the_accuracy():
    lo, hi = bootstrap_accuracy_ci(83, 124)
    assert (lo, hi) == bootstrap_accuracy_ci(83, 124)  # same counts, same interval
    assert lo < 100 * 83 / 124 < hi
    # the normal approximation of the binomial: +-1.96 * sqrt(p(1-p)/n) = +-8.3 points
    assert abs((hi - lo) / 2 - 1.96 * math.sqrt(0.669 * 0.331 / 124) * 100) < 1.0
    assert bootstrap_accuracy_ci(124, 124) == (100.0, 100.0) and bootstrap_accuracy_ci(0, 10) == (0.0, 0.0)
    assert all(math.isnan(v) for v in bootstrap_accuracy_ci(0, 0))
    with pytest.raises(ValueError, match="not within"):
        bootstrap_accuracy_ci(5, 4)


def test_interval_narrows_with_n():
    w100 = (lambda lo, hi: hi - lo)(*bootstrap_accuracy_ci(50, 100))
    w1000 = (lambda lo, hi: hi - lo)(*bootstrap_accuracy_ci(500, 1000))
    assert 2.8 < w100 / w1000 < 3.6  # ~ sqrt(10)


def test_every_score_row_carries_n_and_its_interval():
    rows = [{"benchmark": "HardBLINK", "subset": "3points", "question_id": str(i), "gold": "A", "pred": "A" if i < 30 else "B",
             "valid_letters": list("ABC"), "answer_type": "letter"} for i in range(40)]
    (s,) = score(rows)
    assert s["n"] == 40 and s["accuracy_pct"] == 75.0
    assert (s["ci_low_pct"], s["ci_high_pct"]) == bootstrap_accuracy_ci(30, 40)
    assert s["ci_low_pct"] < 75.0 < s["ci_high_pct"]


def test_cvbench_official_row_interval_resamples_each_source():
    def rows(source, n, k):
        return [{"benchmark": "CV-Bench", "subset": "Count" if source != "Omni3D" else "Depth", "question_id": f"{source}{i}",
                 "gold": "A", "pred": "A" if i < k else "B", "valid_letters": list("AB"), "answer_type": "letter", "source": source}
                for i in range(n)]
    out = score(rows("ADE20K", 20, 10) + rows("COCO", 20, 20) + rows("Omni3D", 40, 20))
    official = next(r for r in out if r["subset"] == "official")
    assert official["accuracy_pct"] == ((50 + 100) / 2 + 50) / 2
    assert (official["ci_low_pct"], official["ci_high_pct"]) == bootstrap_stratified_ci(
        [(10, 20), (20, 20), (20, 40)], lambda a: ((a[0] + a[1]) / 2 + a[2]) / 2)
    assert official["ci_low_pct"] < 62.5 < official["ci_high_pct"]


def test_mcnemar_exact_values():
    # 10 questions only A right, 5 only B right: p = 2 * P(X <= 5 | 15, 1/2) = 2 * 4944 / 32768
    t = mcnemar_exact([True] * 10 + [False] * 5 + [True] * 3, [False] * 10 + [True] * 5 + [True] * 3)
    assert (t["n"], t["only_a"], t["only_b"]) == (18, 10, 5) and t["p_value"] == pytest.approx(2 * 4944 / 32768)
    assert mcnemar_exact([True] * 12, [False] * 12)["p_value"] == pytest.approx(2 / 4096)
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar_exact([True], [])


def pred(run, qid, correct, subset="3points", mode="cot", ablation="normal", error=None):
    return {"eval_run_id": run, "benchmark": "HardBLINK", "subset": subset, "mode": mode, "ablation": ablation,
            "question_id": qid, "correct": correct, "error": error}


def test_compare_pairs_questions_and_reports_what_is_unpaired():
    a = [pred("a", str(i), i < 20) for i in range(40)] + [pred("a", "x", True, error="no oracle")]
    b = [pred("b", str(i), i < 32) for i in range(38)] + [pred("b", "0", True, subset="4points")]
    (row,) = compare_runs(a, b)
    assert (row["n_paired"], row["only_a"], row["only_b"], row["n_only_in_a"], row["n_only_in_b"]) == (38, 0, 12, 2, 0)
    assert row["acc_a_pct"] == pytest.approx(100 * 20 / 38) and row["diff_pct"] == pytest.approx(100 * 12 / 38)
    assert row["p_value"] == pytest.approx(2 / 4096)
    assert unmatched_groups(a, b) == ([], [("HardBLINK", "4points", "cot", "normal")])
    # an answers file (external) against a direct run: pair by subset only
    ext = [pred("c", str(i), True, mode="external", ablation="none") for i in range(40)]
    assert compare_runs(a, ext) == []
    (loose,) = compare_runs(a, ext, match_mode=False)
    assert (loose["n_paired"], loose["only_b"]) == (40, 20)


def test_bootstrap_ratio_ci_of_summed_intersections_over_unions():
    import math

    from evaluation.stats import bootstrap_ratio_ci

    # every question has IoU 1/2: every resample's ratio is 50%
    assert bootstrap_ratio_ci([1, 2, 3], [2, 4, 6]) == (50.0, 50.0)
    # half the questions right (1/1), half empty (0/1): the interval straddles 50 within 0..100
    low, high = bootstrap_ratio_ci([1] * 20 + [0] * 20, [1] * 40)
    assert 20.0 < low < 50.0 < high < 80.0
    assert bootstrap_ratio_ci([1] * 20 + [0] * 20, [1] * 40) == (low, high)  # fixed seed
    assert all(math.isnan(v) for v in bootstrap_ratio_ci([], []))
    with pytest.raises(ValueError, match="two lists of one length"):
        bootstrap_ratio_ci([1, 2], [1])
