"""Turning a model's free text into an answer, without guessing.

Both parsers look for the *final committed* answer, in order of how explicit it is:

1. an answer phrase ("the answer is (B)", "Answer: 3", "there are 3 ...") — the last one
   wins, and the clause right after it (up to "because ...") must name exactly one answer;
2. (options only) sentences naming an option as closer / closest, with clauses in between
   (:mod:`evaluation.claims`), and a letter given first ("(B) because ..."), which must agree;
3. otherwise a short last sentence that names exactly one option ("I'd say B.").

Anything ambiguous ("A or B", "3 or 4"), negated ("not A"), refused or absent gives ``None`` ("unparsed"), which
scoring counts as wrong and reports separately. Perception tokens (depth spans, pixel
boxes) are removed first so their numbers are never read as answers.
"""

from __future__ import annotations

import re
from typing import Sequence

from evaluation.claims import AMBIGUOUS, Mention, claims_in, decide

__all__ = ["clean_text", "parse_option", "parse_count", "parse_answer"]

_SPECIAL_RE = re.compile(r"</?s>|<pad>|<unk>|<image>")
_DEPTH_SPAN_RE = re.compile(r"<DEPTH_START>.*?(?:<DEPTH_END>|$)", re.S)
_BOX_RE = re.compile(r"\(\s*(?:<PIXEL_\d+>\s*,?\s*)+\)?")
_STRAY_TOKEN_RE = re.compile(r"<(?:DEPTH|PIXEL)_[A-Za-z0-9_]*>")

# A clause ends at , ; ! ? newline, or a full stop that is not a decimal point.
_CLAUSE_END_RE = re.compile(r"[,;!?\n]|\.(?!\d)")
_REASON_RE = re.compile(r"\b(?:because|since|as|given\s+that|due\s+to|which|while|whereas)\b", re.I)
_SENTENCE_END_RE = re.compile(r"[!?\n]|\.(?!\d)")

# A single capital letter standing alone (not part of a word or "X-ray").
_LETTER_RE = re.compile(r"(?<![A-Za-z0-9_\-])([A-Z])(?![A-Za-z0-9_\-])")
# Words after "A" that show it names an option rather than being the article.
_LETTER_FOLLOWERS = {
    "is", "or", "and", "are", "was", "were", "seems", "appears", "looks", "has", "had",
    "vs", "versus", "than", "nor", "would", "will", "should", "might", "could", "being",
}
_LETTER_CUES_RE = re.compile(r"(?:point|option|choice|letter|marker|label|answer)\s*[:\s]\s*\(?$", re.I)

_OPTION_ANSWER_RE = re.compile(
    r"\b(?:answer\s*(?:is|:|=|would\s+be|should\s+be|will\s+be)"
    r"|(?:correct|right|best)\s+(?:option|choice)\s*(?:is|:|would\s+be)"
    r"|I\s+(?:choose|select|pick|go\s+with)"
    r"|my\s+(?:choice|pick)\s*(?:is|:))",
    re.I,
)
# "(B)", "B.", "B)", "B:" or "B," first, or the whole text: the model answered before explaining
_LEADING_LETTER_RE = re.compile(r"^\s*\(?([A-Z])(?:\)|\.(?!\w)|:|,|\s*$)")
_NEGATION_WORD_RE = re.compile(r"\b(?:not|never|neither|nor|no)\b|n't\b", re.I)
_NEGATED_CLAUSE_RE = re.compile(r"\s*(?:not|never|neither|none)\b", re.I)
_REFUSAL_RE = re.compile(
    r"\b(?:cannot|can't|can not|unable to|impossible to|not possible to|no way to|hard to|difficult to)\s+"
    r"(?:be\s+)?(?:determine|determined|tell|say|know|answer|judge|decide)"
    r"|\bnot\s+(?:sure|certain|clear)\b|\bI\s+(?:don't|do not)\s+know\b|\bsorry\b",
    re.I,
)
_SHORT_SENTENCE_WORDS = 5  # a longer sentence that merely mentions a point ("Point A is circled in red") is no answer

_NUMBER_WORDS = {
    "zero": 0, "none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20,
}
_NUMBER_RE = re.compile(
    r"(?<![A-Za-z0-9_.])(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")(?![A-Za-z0-9_]|\.\d)",
    re.I,
)
_COUNT_ANSWER_RE = re.compile(
    r"\b(?:answer\s*(?:is|:|=|would\s+be|should\s+be|will\s+be)"
    r"|(?:total|count|number)(?:\s+of\s+[a-z]+)?\s*(?:is|:|=|would\s+be)"
    r"|there\s+(?:is|are|were|was)(?:\s+(?:a\s+total\s+of|exactly|only|in\s+total))?"
    r"|I\s+(?:count|see|can\s+see|found))",
    re.I,
)
_NO_RE = re.compile(r"^\s*no\b", re.I)


def clean_text(text: str) -> str:
    """Drop perception tokens (depth spans, boxes, stray tokens) and special tokens."""
    text = _SPECIAL_RE.sub(" ", text)
    text = _DEPTH_SPAN_RE.sub(" ", text)
    text = _BOX_RE.sub(" ", text)
    text = _STRAY_TOKEN_RE.sub(" ", text)
    return text.strip()


# ---------------------------------------------------------------------------- options


def _letter_mentions(text: str) -> list[tuple[int, str]]:
    """``(position, letter)`` for each capital letter used as an option name.

    The article "A" ("A point is closer") and the pronoun "I" are not mentions unless
    they are parenthesised or follow a cue word ("point A", "option I").
    """
    out = []
    for m in _LETTER_RE.finditer(text):
        letter, start, end = m.group(1), m.start(1), m.end(1)
        parenthesised = start > 0 and text[start - 1] == "(" and text[end : end + 1] == ")"
        cued = bool(_LETTER_CUES_RE.search(text[max(0, start - 20) : start]))
        if letter in ("A", "I") and not (parenthesised or cued):
            nxt = re.match(r"\s+([A-Za-z]+)", text[end:])
            if letter == "I":
                continue
            if nxt and nxt.group(1)[0].islower() and nxt.group(1) not in _LETTER_FOLLOWERS:
                continue  # "A point", "A red circle": the article
        out.append((start, letter))
    return out


def _clause_after(text: str, pos: int) -> str:
    m = _CLAUSE_END_RE.search(text, pos)
    reason = _REASON_RE.search(text, pos, m.start() if m else len(text))
    if reason:
        return text[pos : reason.start()]  # "the answer is B because point A is farther": the reason names other points
    # A letter right before a full stop ("... is B.") belongs to the clause.
    return text[pos : m.start() if m else len(text)]


def _last_sentence_with(text: str, positions: Sequence[int]) -> tuple[int, int]:
    """Bounds of the sentence holding the last of ``positions``."""
    last = max(positions)
    start = 0
    for m in _SENTENCE_END_RE.finditer(text):
        if m.start() < last:
            start = m.end()
        else:
            return start, m.start()
    return start, len(text)


def _normalise(s: str) -> str:
    """Lower case, punctuation to spaces, no leading article: "The lamp." -> "lamp"."""
    s = re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()
    return re.sub(r"^(?:the|a|an)\s+", "", s)


def _match_choice(candidates: Sequence[str], choices: Sequence[str] | None, valid: Sequence[str]) -> str | None:
    if not choices:
        return None
    norm_choices = [_normalise(c) for c in choices]
    for cand in candidates:
        norm = _normalise(cand)
        hits = [i for i, c in enumerate(norm_choices) if norm and c == norm]
        if len(hits) == 1 and hits[0] < len(valid):
            return valid[hits[0]]
    return None


def parse_option(text: str | None, valid_letters: Sequence[str], choices: Sequence[str] | None = None) -> str | None:
    """The option letter the text commits to last, or ``None`` if unparsed/ambiguous.

    Only letters in ``valid_letters`` are returned; a committed letter outside them is
    ``None``, not a guess. With ``choices``, an answer given as the option's text
    ("2", "the lamp") is mapped to its letter when it matches exactly one option.
    """
    if not text:
        return None
    valid = [v.upper() for v in valid_letters]
    body = clean_text(text)
    if not body:
        return None

    # 1. Explicit answer phrase: the last one decides; "the answer is not A" commits to nothing.
    explicit = list(_OPTION_ANSWER_RE.finditer(body))
    if explicit:
        clause = _clause_after(body, explicit[-1].end())
        letters_in = {letter for _, letter in _letter_mentions(clause)}
        if _NEGATED_CLAUSE_RE.match(clause):
            return None
        if len(letters_in) == 1:
            letter = letters_in.pop()
            return letter if letter in valid else None
        if len(letters_in) > 1:
            return None
        by_text = _match_choice([clause], choices, valid)
        if by_text:
            return by_text

    # 2. Sentences naming an option as closer / closest (see evaluation.claims), and an
    #    answer given first ("(B) because ..."): they must agree on one option.
    mentions = [Mention(p, p + 1, letter) for p, letter in _letter_mentions(body)] + _choice_mentions(body, choices, valid)
    verdict = decide(claims_in(body, mentions))
    leading = _LEADING_LETTER_RE.match(body)
    if leading and verdict not in (None, leading.group(1)):
        return None
    if verdict == AMBIGUOUS:
        return None
    if verdict and _REFUSAL_RE.search(body):
        return None  # "A may be closer, but it is hard to tell": a hedge, not a commitment
    committed = verdict or (leading.group(1) if leading else None)
    if committed:
        return committed if committed in valid else None
    if _REFUSAL_RE.search(body):
        return None  # "I cannot determine ...": a refusal, even if it names the points

    # 3. A short last sentence naming exactly one option ("I'd say B.", "Point C").
    letter_mentions = _letter_mentions(body)
    if letter_mentions:
        start, end = _last_sentence_with(body, [p for p, _ in letter_mentions])
        letters_in = {letter for p, letter in letter_mentions if start <= p < end}
        sentence = body[start:end]
        if len(letters_in) == 1 and len(sentence.split()) <= _SHORT_SENTENCE_WORDS and not _NEGATION_WORD_RE.search(sentence):
            letter = letters_in.pop()
            return letter if letter in valid else None
        return None
    by_text = _match_choice([body], choices, valid)
    if by_text is None and choices and all(_normalise(c).isdigit() for c in choices):
        # Numeric options answered with a count ("There are 3 cups.").
        count = parse_count(body)
        if count is not None:
            by_text = _match_choice([str(count)], choices, valid)
    return by_text


def _choice_mentions(body: str, choices: Sequence[str] | None, valid: Sequence[str]) -> list[Mention]:
    """Where an option's text ("the lamp") is named in the answer, as a mention of its letter."""
    if not choices:
        return []
    out = []
    for letter, choice in zip(valid, choices):
        name = _normalise(choice)
        if len(name) < 2 or name.isdigit() or len(name) == 1:
            continue
        words = r"\s+".join(re.escape(w) for w in name.split())
        out += [Mention(m.start(), m.end(), letter) for m in re.finditer(rf"(?<![A-Za-z0-9]){words}(?![A-Za-z0-9])", body, re.I)]
    return sorted(out, key=lambda m: m.start)


# ---------------------------------------------------------------------------- counts


def _numbers(text: str) -> list[tuple[int, float]]:
    out = []
    for m in _NUMBER_RE.finditer(text):
        tok = m.group(1).lower()
        value = float(_NUMBER_WORDS[tok]) if tok in _NUMBER_WORDS else float(tok)
        out.append((m.start(1), value))
    return out


def _as_count(values: set[float]) -> int | None:
    if len(values) != 1:
        return None
    v = values.pop()
    return int(v) if v.is_integer() and v >= 0 else None


def parse_count(text: str | None) -> int | None:
    """The count the text commits to last (digits or zero..twenty), else ``None``."""
    if not text:
        return None
    body = clean_text(text)
    if not body:
        return None
    explicit = list(_COUNT_ANSWER_RE.finditer(body))
    if explicit:
        clause = _clause_after(body, explicit[-1].end())
        values = {v for _, v in _numbers(clause)}
        if values:
            return _as_count(values)
        if _NO_RE.match(clause) and re.match(r"there", explicit[-1].group(0), re.I):
            return 0  # "there are no cars"
    mentions = _numbers(body)
    if not mentions:
        return None
    start, end = _last_sentence_with(body, [p for p, _ in mentions])
    return _as_count({v for p, v in mentions if start <= p < end})


def parse_answer(text: str | None, row: dict) -> str | None:
    """Parse ``text`` for a benchmark row: a letter or a count as a string, or ``None``."""
    if row.get("answer_type") == "number":
        count = parse_count(text)
        return None if count is None else str(count)
    return parse_option(text, row.get("valid_letters") or [], row.get("choices"))
