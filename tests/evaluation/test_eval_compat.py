"""Other harnesses' answer matching, per peer and version, side by side with ours: lmms-eval
0.7.2 (leading letter) and 0.7.3 (BLINK: terse line, last "answer is X", last "(X)", valid
leading letter), VLMEvalKit's can_infer at c3371551 and a67ace50 ("answer is X" fallback).
Each expected value below is what the peer's released function returns for that text (the
differential check, tests/benchmarks/test_compat_differential.py, runs the functions themselves)."""

import json

import pytest

from evaluation.compat import CompatSpecError, compat_results, compat_table, extract, latest, resolve
from evaluation.compat_lmms_eval import blink_letter_073, leading_letter
from evaluation.compat_vlmevalkit import can_infer

AB = {"A": "A", "B": "B"}


@pytest.mark.parametrize("text,expected", [
    ("B", "B"), ("(B)", "B"), (" (b) the chair", "B"), ("B. Because it is lower.", "B"),
    ("The answer is B.", "T"),  # the first letter of the sentence: why 0.7.2 scores sentences low
    ("Point A is closer.", "P"), ("3", ""), ("", ""),
])
def test_lmms_eval_072_reads_the_leading_letter(text, expected):
    assert leading_letter(text) == expected


@pytest.mark.parametrize("text,letters,expected", [
    ("b.", "AB", "B"), ("(B)\nPoint B is lower.", "AB", "B"),  # 1. terse first line
    ("The answer is B.", "AB", "B"), ("Answer: (b)", "AB", "B"), ("answers - A", "AB", "A"),  # 2. stated
    ("The answer is A. On reflection, the answer is (C).", "ABC", "C"),  # 2. the last one
    ("The answer is a point on the table.", "AB", "A"),  # 2. case-insensitive: the article reads as A
    ("The answer is D.", "ABC", ""),  # D is no option here; no "(X)"; "T" is not an option: nothing
    ("I pick (B) over (A).", "AB", "A"),  # 3. the last "(X)"
    ("I pick (b).", "AB", ""),  # 3. case-sensitive: "(b)" is not "(B)"; 4. "I" is not an option
    ("Based on the image you provided, point A is closer to the camera.", "AB", "B"),  # 4. "Based" leads with B
    ("Point B is closer to the camera.", "AB", ""),  # 4. "P" is no option: nothing
    ("Cannot determine.", "ABCD", "C"),  # 4. a refusal that starts with an option letter
])
def test_lmms_eval_073_blink_extraction(text, letters, expected):
    assert blink_letter_073(text, letters) == expected


@pytest.mark.parametrize("text,options,fallback,expected", [
    ("B", AB, False, "B"), ("(B)", AB, False, "B"), ("The answer is (B).", AB, False, "B"),
    ("Answer: B. Point B lies on the table in the foreground, so it is closer.", AB, False, None),  # letter not in the last 4 words
    ("Point A is closer than point B.", AB, False, None),  # two letters
    ("Cannot determine the answer", AB, False, "Z"),  # a listed refusal
    ("Z", AB, False, "Z"), ("I am not sure. Z", {"A": "lamp", "B": "chair"}, False, "Z"),  # a standalone Z: no answer
    ("Failed to obtain answer via API. B", AB, False, None),  # API failure: straight to the text fallback (too long here)
    ("the lamp", {"A": "lamp", "B": "chair"}, False, "A"),  # option text, short answer
    ("The lamp is closer to the camera than the chair.", {"A": "lamp", "B": "chair"}, False, None),
    ("I pick the chair", {"A": "lamp", "B": "chair"}, False, "B"),
    # a67ace50: "[correct ]answer is [**]X" with X in A-D when no single late letter decides
    ("Point A is closer than point B, so the answer is A", AB, False, None),
    ("Point A is closer than point B, so the answer is A", AB, True, "A"),
    ("The correct answer is **B**. Here's why: point B sits on the table in the foreground.", AB, True, "B"),
    ("The answer is E, not A or B.", {"A": "A", "B": "B", "E": "E"}, True, None),  # E is outside A-D
])
def test_vlmevalkit_can_infer(text, options, fallback, expected):
    assert can_infer(text, options, fallback) == expected


def test_specs_resolve_to_exact_versions():
    assert [r.name for r in latest()] == ["lmms-eval==0.7.3", "vlmevalkit==a67ace50"]
    assert [r.name for r in resolve([])] == ["lmms-eval==0.7.3", "vlmevalkit==a67ace50"]
    assert [r.name for r in resolve(["lmms-eval==0.7.2", "lmms-eval", "vlmevalkit"])] == [
        "lmms-eval==0.7.2", "lmms-eval==0.7.3", "vlmevalkit==a67ace50"]
    by = {spec: resolve([spec])[0].name for spec in (
        "vlmevalkit==2025-08-04", "vlmevalkit==2026-06-16", "vlmevalkit==2026-06-17", "vlmevalkit==2026-08-18",
        "vlmevalkit==c3371551bb84a36b8012d277231059c901ffa2f7", "vlmevalkit==590f052", "vlmevalkit==e8e78f05")}
    assert by == {"vlmevalkit==2025-08-04": "vlmevalkit==c3371551", "vlmevalkit==2026-06-16": "vlmevalkit==c3371551",
                  "vlmevalkit==2026-06-17": "vlmevalkit==a67ace50", "vlmevalkit==2026-08-18": "vlmevalkit==a67ace50",
                  "vlmevalkit==c3371551bb84a36b8012d277231059c901ffa2f7": "vlmevalkit==c3371551",
                  "vlmevalkit==590f052": "vlmevalkit==c3371551", "vlmevalkit==e8e78f05": "vlmevalkit==a67ace50"}
    for spec, message in [("lmms-eval==0.7.1", "not modelled"), ("vlmevalkit==2025-01-01", "before 2025-08-04"),
                          ("vlmevalkit==2027-01-01", "checked through commit e8e78f05"), ("vlmevalkit==deadbeef", "not a modelled commit"),
                          ("vlmevalkit==2026-02-30", "not a date"), ("opencompass==1.0", "unknown peer")]:
        with pytest.raises(CompatSpecError, match=message):
            resolve([spec])


def row(text, gold, letters="AB", choices=None, answer_type="letter", subset="Relative_Depth", benchmark="BLINK"):
    return {"benchmark": benchmark, "subset": subset, "question_id": text, "raw_output": text, "gold": gold,
            "valid_letters": list(letters), "choices": choices, "answer_type": answer_type}


def test_same_answers_scored_by_each_version_side_by_side():
    preds = [
        row("(A)", "A", choices=["A", "B"]),
        row("The answer is B.", "B", choices=["A", "B"]),
        row("Point A, which is circled on the dome of the building, appears to be closer to the camera than point B.", "A"),
        row("B", "A"),
        row("The answer is B.", "B", choices=["lamp", "chair"], benchmark="CV-Bench", subset="Depth"),  # 0.7.3 kept CV-Bench's rule
        row("3", "3", letters="", answer_type="number", subset="count"),
    ]
    rules = resolve(["lmms-eval==0.7.2", "lmms-eval==0.7.3", "vlmevalkit==c3371551", "vlmevalkit==a67ace50"])
    results = compat_results(preds, rules)
    preds_by = {name: [r[name]["pred"] for r in results] for name in results[0]}
    assert preds_by == {
        "ptok": ["A", "B", "A", "B", "B", "3"],
        "lmms-eval==0.7.2": ["A", "T", "P", "B", "T", None],
        "lmms-eval==0.7.3": ["A", "B", None, "B", "T", None],
        "vlmevalkit==c3371551": ["A", "B", None, "B", "B", None],
        "vlmevalkit==a67ace50": ["A", "B", None, "B", "B", None],
    }
    # each verdict says which peer, version and function gave it, and survives a JSON round trip (extra_json)
    verdict = json.loads(json.dumps(results[1]))["lmms-eval==0.7.3"]
    assert verdict == {"pred": "B", "correct": True, "peer": "lmms-eval", "version": "0.7.3",
                       "source": "lmms_eval/tasks/blink/utils.py:_extract_answer_letter"}
    assert results[4]["lmms-eval==0.7.3"]["source"] == "lmms_eval/tasks/cv_bench/utils.py:_extract_answer_letter"
    assert results[5]["lmms-eval==0.7.3"]["correct"] is None
    table = {t["subset"]: t for t in compat_table(preds, results)}
    assert table["Relative_Depth"]["n"] == 4 and table["Relative_Depth"]["pct"] == {
        "ptok": 75.0, "lmms-eval==0.7.2": 25.0, "lmms-eval==0.7.3": 50.0, "vlmevalkit==c3371551": 50.0, "vlmevalkit==a67ace50": 50.0}
    assert table["count"]["pct"]["ptok"] == 100.0 and table["count"]["pct"]["lmms-eval==0.7.3"] is None  # n/a for numbers
    with pytest.raises(ValueError, match="unknown rule"):
        extract("lmms_eval", "A", preds[0])
