"""The answer-matching rules other harnesses apply, so one answers file can be scored the way
each of them would score it (``ptok score --compat``). Written from their documented
behaviour, in this project's own code:

- ``lmms_eval``: lmms-eval's BLINK and CV-Bench tasks (``lmms_eval/tasks/blink/utils.py`` and
  ``lmms_eval/tasks/cv_bench/utils.py``, ``_extract_answer_letter``) take the first letter
  of the stripped output, after optional "(" or spaces, case-insensitively, and compare it to
  the gold letter. "The answer is B" reads as "T"; a sentence starting "Point A ..." as "P".
- ``vlmevalkit``: VLMEvalKit's exact-matching multiple choice (``vlmeval/utils/matching_util.py``,
  ``can_infer``): a fixed list of refusal sentences means no answer; else punctuation
  ``.()[],:;!*#{}`` becomes spaces, and if exactly one option letter occurs as a whole word and
  it is among the last five words, that letter; else if the output is at most twice as long as
  all option texts together and exactly one option text occurs in it (lower case), that
  option; otherwise no answer, scored wrong (no judge model in exact matching).

Both apply to letter questions; for number answers (the counting sets) neither harness has a
rule here and the result is ``None`` (shown as n/a).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable, Sequence

from evaluation.parsing import parse_answer

RULES = ("ptok", "lmms_eval", "vlmevalkit")

_LMMS_LEADING_RE = re.compile(r"[\(\s]*([A-Z])[\)\.\s]*", re.I)
_VLMEVAL_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_VLMEVAL_PUNCT = ".()[],:;!*#{}"
_VLMEVAL_LAST_WORDS = 5


def lmms_eval_letter(text: str) -> str:
    """lmms-eval's BLINK / CV-Bench extraction: the leading letter, upper-cased, or ""."""
    m = _LMMS_LEADING_RE.match(text.strip())
    return m.group(1).upper() if m else ""


def _options(row: dict) -> dict[str, str]:
    letters = list(row.get("valid_letters") or [])
    choices = row.get("choices") or letters  # HardBLINK lists no option texts: the letters stand in
    return {letter: str(choice) for letter, choice in zip(letters, choices)}


def vlmevalkit_letter(text: str, options: dict[str, str]) -> str | None:
    """VLMEvalKit's ``can_infer`` in exact-matching mode: an option letter, or None (scored wrong)."""
    if any(refusal in text for refusal in _VLMEVAL_REFUSALS):
        return None
    spaced = text
    for ch in _VLMEVAL_PUNCT:
        spaced = spaced.replace(ch, " ")
    words = spaced.split()
    found = [letter for letter in options if letter in words]
    if len(found) == 1 and words.index(found[0]) > len(words) - _VLMEVAL_LAST_WORDS:
        return found[0]
    lower = text.lower()
    if len(lower) > 2 * sum(len(v) for v in options.values()):
        return None
    hits = [letter for letter, value in options.items() if value.lower() in lower]
    return hits[0] if len(hits) == 1 else None


def extract(rule: str, text: str | None, row: dict) -> str | None:
    """The answer ``rule`` reads from ``text`` for a benchmark row (None: no answer / n/a)."""
    if rule == "ptok":
        return parse_answer(text, row)
    if row.get("answer_type") == "number" or text is None:
        return None
    if rule == "lmms_eval":
        return lmms_eval_letter(text) or None
    if rule == "vlmevalkit":
        return vlmevalkit_letter(text, _options(row))
    raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")


def compat_results(predictions: Iterable[dict]) -> list[dict[str, dict]]:
    """Per prediction: ``{rule: {"pred", "correct"}}``; ``correct`` is None where a rule does not apply."""
    out = []
    for p in predictions:
        text = p.get("raw_output")
        res = {}
        for rule in RULES:
            if rule != "ptok" and p.get("answer_type") == "number":
                res[rule] = {"pred": None, "correct": None}
                continue
            pred = extract(rule, text, p)
            res[rule] = {"pred": pred, "correct": pred is not None and pred == str(p["gold"])}
        out.append(res)
    return out


def compat_table(predictions: Sequence[dict], results: Sequence[dict[str, dict]]) -> list[dict]:
    """Per (benchmark, subset): n and accuracy % under each rule (None where a rule does not apply)."""
    groups: dict[tuple[str, str], list[dict[str, dict]]] = defaultdict(list)
    for p, r in zip(predictions, results):
        groups[(str(p["benchmark"]), str(p["subset"]))].append(r)
    rows = []
    for (bench, subset), rs in sorted(groups.items()):
        row = {"benchmark": bench, "subset": subset, "n": len(rs)}
        for rule in RULES:
            flags = [r[rule]["correct"] for r in rs]
            row[f"{rule}_pct"] = None if any(f is None for f in flags) else 100.0 * sum(flags) / len(flags)
        rows.append(row)
    return rows

