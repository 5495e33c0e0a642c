"""lmms-eval's answer extraction for its BLINK and CV-Bench tasks, per release, written in
this project's own code from the released sources (read from the PyPI wheels; the
differential check ``benchmarks/compat_differential.py`` runs the released functions
themselves against these on the answer corpus).

- 0.7.2, BLINK and CV-Bench (``lmms_eval/tasks/{blink,cv_bench}/utils.py``,
  ``_extract_answer_letter``), and 0.7.3 CV-Bench (unchanged): the first letter of the
  stripped output, after optional "(" and spaces, any of A-Z, case-insensitively.
  "The answer is B" reads "T"; "Point A ..." reads "P".
- 0.7.3, BLINK (``_extract_answer_letter(text, valid_letters)``, where the valid letters are
  the first ``len(doc["choices"])`` capitals, or all 26 without choices), the first that
  applies of:
  1. the first line, at most 4 characters, is one valid letter with optional "(", ")" and
     trailing ``. : , )`` or spaces (case-insensitive);
  2. the last "answer[s] [is] [:|-] [(]X[)]" not followed by a letter (case-insensitive, so
     "the answer is a point" reads "A");
  3. the last "(X)" with X a valid capital (case-sensitive: "(b)" does not count);
  4. the leading letter as in 0.7.2, but only a valid one ("Based on ..." reads "B" when
     B is an option; "Point A ..." reads nothing).
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

_LEADING_ANY_RE = re.compile(r"[(\s]*([A-Z])", re.I)


def leading_letter(text: str) -> str:
    """0.7.2 (BLINK, CV-Bench) and 0.7.3 (CV-Bench): the leading letter, upper-cased, or ""."""
    m = _LEADING_ANY_RE.match(text.strip())
    return m.group(1).upper() if m else ""


@lru_cache(maxsize=64)
def _patterns(letters: str) -> tuple[re.Pattern, re.Pattern, re.Pattern, re.Pattern]:
    cls = "[" + re.escape(letters) + "]"
    terse = re.compile(r"\(?(" + cls + r")\)?[.\s:,)]*", re.I)
    stated = re.compile(r"answers?(?:\s+is)?\s*[:\-]?\s*\(?(" + cls + r")\)?(?![A-Za-z])", re.I)
    bracketed = re.compile(r"\((" + cls + r")\)")
    leading = re.compile(r"[(\s]*(" + cls + r")", re.I)
    return terse, stated, bracketed, leading


def blink_letters(n_choices: int) -> str:
    """The letters 0.7.3's BLINK task accepts for a question with ``n_choices`` options."""
    return string.ascii_uppercase[:n_choices] or string.ascii_uppercase


def blink_letter_073(text: str, letters: str) -> str:
    """0.7.3's BLINK extraction (steps in the module docstring): a letter from ``letters``, or ""."""
    text = text.strip()
    terse, stated, bracketed, leading = _patterns(letters.upper())
    first_line = text.split("\n", 1)[0].strip()
    if len(first_line) <= 4:
        m = terse.fullmatch(first_line)
        if m:
            return m.group(1).upper()
    for pattern in (stated, bracketed):
        found = pattern.findall(text)
        if found:
            return found[-1].upper()
    m = leading.match(text)
    return m.group(1).upper() if m else ""
