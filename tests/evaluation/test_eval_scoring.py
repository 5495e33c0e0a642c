"""Scoring arithmetic: accuracy, baselines, CV-Bench's official formula, reports, answer files."""

import json
import math
from pathlib import Path

import pytest

from evaluation.answer_files import score_answers_file
from evaluation.scoring import (
    PUBLISHED,
    cvbench_official,
    plot_scores,
    score,
    scores_markdown,
)


def pred(benchmark, subset, qid, gold, p, letters="ABC", answer_type="letter", **extra):
    return {"benchmark": benchmark, "subset": subset, "question_id": str(qid), "gold": gold, "pred": p,
            "valid_letters": list(letters) if answer_type == "letter" else [], "answer_type": answer_type, **extra}


def by_key(rows):
    return {(r["benchmark"], r["subset"]): r for r in rows}


def test_accuracy_chance_majority_and_paper_numbers():
    rows = [pred("HardBLINK", "3points", i, g, p) for i, (g, p) in enumerate(zip("AABC", ["A", "B", None, "C"]))]
    rows += [pred("BLINK", "Relative_Depth", 0, "A", "A", "AB"), pred("BLINK", "Relative_Depth", 1, "B", "A", "AB")]
    rows += [pred("SEED-Count", "count", i, g, p, answer_type="number") for i, (g, p) in enumerate(zip(["3", "3", "5"], ["3", "4", "5"]))]
    s = by_key(score(rows))
    hb = s[("HardBLINK", "3points")]
    assert (hb["n"], hb["n_correct"], hb["n_unparsed"]) == (4, 2, 1)
    assert hb["accuracy_pct"] == pytest.approx(50.0)
    assert hb["chance_pct"] == pytest.approx(100 / 3)
    assert hb["majority_pct"] == pytest.approx(50.0)  # "A" is gold twice out of 4
    assert (hb["paper_llava15_13b_pct"], hb["paper_aurora_pct"]) == (35.5, 66.9)
    bl = s[("BLINK", "Relative_Depth")]
    assert bl["accuracy_pct"] == pytest.approx(50.0) and bl["chance_pct"] == pytest.approx(50.0)
    assert (bl["paper_llava15_13b_pct"], bl["paper_aurora_pct"]) == (54.0, 64.5)
    sc = s[("SEED-Count", "count")]
    assert sc["accuracy_pct"] == pytest.approx(200 / 3) and math.isnan(sc["chance_pct"])
    assert sc["majority_pct"] == pytest.approx(200 / 3)
    # the paper's counting table gives LLaVA 1.5 13B too (evaluation/published.py)
    assert (sc["paper_llava15_13b_pct"], sc["paper_aurora_pct"]) == (54.2, 62.5)


def test_published_table_holds_the_papers_numbers():
    assert PUBLISHED[("HardBLINK", "5points")] == {"LLaVA-1.5-13B": 29.0, "LLaVA-Aurora": 54.8}
    assert PUBLISHED[("CV-Bench", "Count")]["LLaVA-Aurora"] == 54.6
    assert PUBLISHED[("BLINK-Count", "count")]["LLaVA-Aurora"] == 45.5
    assert PUBLISHED[("BLINK-Count", "count")]["LLaVA-1.5-13B"] == 34.7
    assert ("Relative depth", "average") not in PUBLISHED  # the depth table's average is no benchmark subset


def test_cvbench_official_score():
    assert cvbench_official({"ADE20K": 0.0, "COCO": 100.0, "Omni3D": 50.0}) == pytest.approx(50.0)
    assert math.isnan(cvbench_official({"ADE20K": 10.0, "COCO": 20.0}))
    rows = [pred("CV-Bench", "Count", f"a{i}", "A", "B", "ABCD", source="ADE20K") for i in range(2)]
    rows += [pred("CV-Bench", "Count", f"c{i}", "A", "A", "ABCD", source="COCO") for i in range(4)]
    rows += [pred("CV-Bench", "Depth", f"o{i}", "A", p, "AB", source="Omni3D") for i, p in enumerate("AB")]
    s = by_key(score(rows))
    off = s[("CV-Bench", "official")]
    # ½·((0 + 100)/2 + 50) = 50, not the pooled 5/8 = 62.5
    assert off["accuracy_pct"] == pytest.approx(50.0) and off["n"] == 8
    assert off["chance_pct"] == pytest.approx(0.5 * ((25 + 25) / 2 + 50))
    assert off["acc_Omni3D_pct"] == pytest.approx(50.0)
    assert s[("CV-Bench", "Count")]["accuracy_pct"] == pytest.approx(400 / 6)
    # without Omni3D there is no official row
    assert ("CV-Bench", "official") not in by_key(score(rows[:6]))


def test_extra_group_keys_and_rows_not_run():
    rows = [pred("HardBLINK", "3points", 0, "A", "A", ablation="oracle"),
            pred("HardBLINK", "3points", 1, "A", None, ablation="oracle", error="no oracle depth tokens for this row"),
            pred("HardBLINK", "3points", 0, "A", "B", ablation="normal")]
    s = {(r["ablation"], r["subset"]): r for r in score(rows, by=("ablation", "benchmark", "subset"))}
    assert s[("oracle", "3points")]["accuracy_pct"] == 100.0 and s[("oracle", "3points")]["n_not_run"] == 1
    assert s[("normal", "3points")]["accuracy_pct"] == 0.0
    with pytest.raises(ValueError):
        score(rows, by=("ablation",))


def test_markdown_and_plot(tmp_path: Path):
    rows = score([pred("HardBLINK", "3points", 0, "A", "A"), pred("SEED-Count", "count", 0, "2", "3", answer_type="number")])
    md = scores_markdown(rows)
    lines = md.strip().splitlines()
    assert lines[0].startswith("| benchmark | subset | n |")
    assert "| HardBLINK | 3points | 1 | 0 | 1 | 0 | 100.0 | 100.0 | 100.0 | 33.3 | 100.0 | 35.5 | 66.9 |" in md
    assert "| SEED-Count | count | 1 | 0 | 0 | 0 | 0.0 | 0.0 | 0.0 | — | 100.0 | 54.2 | 62.5 |" in md
    path = plot_scores(rows, tmp_path / "plots" / "scores.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_score_answers_file(tmp_path: Path):
    bench = [pred("HardBLINK", "3points", i, g, None) | {"choices": None, "image_bytes": b"x"} for i, g in enumerate("ABC")]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("\n".join([
        json.dumps({"question_id": 0, "prompt": "q", "text": "The answer is (A).", "answer_id": "x1", "model_id": "m", "metadata": {}}),
        json.dumps({"question_id": 1, "text": "A or B"}),
        json.dumps({"question_id": 1, "text": "(B)"}),
        json.dumps({"question_id": 7, "text": "(A)"}),
        "{broken",
    ]) + "\n")
    result = score_answers_file(bench, answers)
    preds = {p["question_id"]: p for p in result.predictions}
    assert preds["0"]["pred"] == "A" and preds["0"]["correct"] and preds["0"]["answer_record"]["answer_id"] == "x1"
    assert preds["1"]["pred"] is None and not preds["1"]["missing_answer"]
    assert preds["2"]["pred"] is None and preds["2"]["missing_answer"]
    assert "image_bytes" not in preds["0"]
    assert sorted(r.reason for r in result.rejects) == ["answer without question", "duplicate answer", "malformed JSON line: Expecting property name enclosed in double quotes"]
    s = result.scores[0]
    assert (s["n"], s["n_correct"], s["n_unparsed"]) == (3, 1, 2)
    with pytest.raises(ValueError, match="appears twice"):
        score_answers_file(bench + bench[:1], answers)
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        score_answers_file(bench, tmp_path / "nope.jsonl")
