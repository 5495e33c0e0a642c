"""VLMEvalKit's exact-matching multiple choice (``vlmeval/utils/matching_util.py``,
``can_infer`` = ``can_infer_option``, else ``can_infer_text``), per commit, written in this
project's own code from the sources on GitHub (open-compass/VLMEvalKit). With no judge model,
anything ``can_infer`` does not read is option "Z": no answer, scored wrong.

At commit c3371551 (2025-08-04), in order:
1. the output contains "Failed to obtain answer via API": no option from step 2-5, go to 6;
2. it contains one of four fixed refusal sentences: "Z";
3. punctuation ``.()[],:;!*#{}`` becomes spaces and the output is split into words; if
   exactly one option letter is a word and its first occurrence is among the last four
   words (index > n_words - 5), that letter;
4. if no option letter is a word but "Z" is: "Z";
5. (from a67ace50, 2026-06-17) the first "[correct ]answer is [**]X" with X in A-D,
   case-insensitive, when X is an option: X;
6. text fallback: if the lower-cased output is at most twice as long as all option texts
   together and exactly one option text (lower case) occurs in it, that option.
Step 3 also has a branch taken only with the environment variable VERBOSE set ("A" as a
quantifier); the rule here is the default, VERBOSE unset.
"""

from __future__ import annotations

import re

_API_FAILURE = "Failed to obtain answer via API"
_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_PUNCT_TO_SPACE = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
_LAST_WORDS = 5
_ANSWER_IS_RE = re.compile(r"(?:correct\s+)?answer\s+is\s+\**([ABCD])\**", re.I)
NO_ANSWER = "Z"


def _option_letter(text: str, options: dict[str, str], answer_is_fallback: bool) -> str | None:
    """Steps 1-5: an option letter, "Z", or None (go on to the text fallback)."""
    if _API_FAILURE in text:
        return None
    if any(refusal in text for refusal in _REFUSALS):
        return NO_ANSWER
    words = text.translate(_PUNCT_TO_SPACE).split()
    named = [letter for letter in options if letter in words]
    if len(named) == 1:
        if words.index(named[0]) > len(words) - _LAST_WORDS:
            return named[0]
    elif not named and NO_ANSWER in words:
        return NO_ANSWER
    if answer_is_fallback:
        m = _ANSWER_IS_RE.search(text)
        if m and m.group(1).upper() in options:
            return m.group(1).upper()
    return None


def _option_text(text: str, options: dict[str, str]) -> str | None:
    """Step 6: the one option whose text occurs in a short output."""
    lower = text.lower()
    if len(lower) > 2 * sum(len(v) for v in options.values()):
        return None
    hits = [letter for letter, value in options.items() if value.lower() in lower]
    return hits[0] if len(hits) == 1 else None


def can_infer(text: str, options: dict[str, str], answer_is_fallback: bool) -> str | None:
    """The option VLMEvalKit reads (a letter or "Z"), or None where it reads nothing (also "Z" in
    its scoring). ``options``: letter -> option text, in letter order."""
    return _option_letter(text, options, answer_is_fallback) or _option_text(text, options)
