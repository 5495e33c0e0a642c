"""Other harnesses' answer matching, as documented: lmms-eval's leading letter, VLMEvalKit's
can_infer (whole-word letter near the end, else option text), side by side with ours."""

import pytest

from evaluation.compat import compat_results, compat_table, extract, lmms_eval_letter, vlmevalkit_letter

AB = {"A": "A", "B": "B"}


@pytest.mark.parametrize("text,expected", [
    ("B", "B"), ("(B)", "B"), (" (b) the chair", "B"), ("B. Because it is lower.", "B"),
    ("The answer is B.", "T"),  # the first letter of the sentence: why lmms-eval scores sentences low
    ("Point A is closer.", "P"), ("3", ""), ("", ""),
])
def test_lmms_eval_reads_the_leading_letter(text, expected):
    assert lmms_eval_letter(text) == expected


@pytest.mark.parametrize("text,options,expected", [
    ("B", AB, "B"), ("(B)", AB, "B"), ("The answer is (B).", AB, "B"),
    ("Answer: B. Point B lies on the table in the foreground, so it is closer.", AB, None),  # letter not in the last 5 words
    ("Point A is closer than point B.", AB, None),  # two letters
    ("Cannot determine the answer", AB, None),  # a listed refusal
    ("the lamp", {"A": "lamp", "B": "chair"}, "A"),  # option text, short answer
    ("The lamp is closer to the camera than the chair.", {"A": "lamp", "B": "chair"}, None),  # too long / both texts
    ("I pick the chair", {"A": "lamp", "B": "chair"}, "B"),
])
def test_vlmevalkit_can_infer(text, options, expected):
    assert vlmevalkit_letter(text, options) == expected


def row(text, gold, letters="AB", choices=None, answer_type="letter", subset="Relative_Depth"):
    return {"benchmark": "BLINK", "subset": subset, "question_id": text, "raw_output": text, "gold": gold,
            "valid_letters": list(letters), "choices": choices, "answer_type": answer_type}


def test_same_answers_three_scores_side_by_side():
    preds = [
        row("(A)", "A"),
        row("The answer is B.", "B"),
        row("Point A, which is circled on the dome of the building, appears to be closer to the camera than point B.", "A"),
        row("B", "A"),
        row("3", "3", letters="", answer_type="number", subset="count"),
    ]
    results = compat_results(preds)
    assert [r["lmms_eval"]["pred"] for r in results] == ["A", "T", "P", "B", None]
    assert [r["vlmevalkit"]["pred"] for r in results] == ["A", "B", None, "B", None]
    assert [r["ptok"]["pred"] for r in results] == ["A", "B", "A", "B", "3"]
    table = {t["subset"]: t for t in compat_table(preds, results)}
    assert table["Relative_Depth"] == {"benchmark": "BLINK", "subset": "Relative_Depth", "n": 4,
                                       "ptok_pct": 75.0, "lmms_eval_pct": 25.0, "vlmevalkit_pct": 50.0}
    assert table["count"]["ptok_pct"] == 100.0 and table["count"]["lmms_eval_pct"] is None  # n/a for numbers
    with pytest.raises(ValueError, match="unknown rule"):
        extract("other", "A", preds[0])
