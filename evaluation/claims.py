"""Answers stated in sentences: "Point A, which is circled on the dome, appears to be closer
to the camera than point B." or "The point closest to the camera is C."

A *claim* names one option (by letter, "point B", or the option's text) as closer / closest /
nearer / nearest, with any clauses in between. The rule, written for the general case rather
than for any corpus:

- a superlative claim ("closest", "nearest") outranks a comparative one ("closer than"), so
  "A is closer than B, but C is the closest" commits to C;
- claims about two different options, a negated claim ("A is not closer"), or a subject joined
  to another option ("A or B is closer", "A and B are closer") make the text ambiguous: the
  caller gets ``AMBIGUOUS`` and reports the answer as unparsed, never a guess;
- an option after "than" / "compared to" is the thing compared against, not a subject;
- a comparative inside an aside about the subject ("A, which is closer to the bottom of the
  image, ...") says nothing about the subject's depth; the claim, if any, follows the aside.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Sequence

AMBIGUOUS = "?"

_COMPARATIVE_RE = re.compile(r"\b(closer|nearer|closest|nearest)\b", re.I)
_SUPERLATIVE = {"closest", "nearest"}
# between a subject and its comparative: a linking verb must be there ("A, which ..., appears to be closer")
_LINK_VERB_RE = re.compile(r"\b(?:is|are|was|appears?|seems?|looks?|lies|sits|being|be|'s|remains)\b", re.I)
_NEGATION_RE = re.compile(r"\b(?:not|never|neither|nor|no)\b|n't\b", re.I)
_OPTION_WORD = r"(?:(?:the\s+)?(?:point|option)\s+)?\(?"
# the subject is joined to another option: "A or B", "A and point B", "either A", "neither A"
# (", and point B is closer" after a comma starts a new clause: not joined)
_JOINED_RE = re.compile(r"(?:\b[A-Z]\)?\s*\b(?:or|and|nor)|\b(?:either|neither)|,\s*or)\s*" + _OPTION_WORD + r"\s*$", re.I)
_COMPARED_BEFORE_RE = re.compile(r"\b(?:between|than|versus|vs\.?|compared\s+(?:to|with)|whether|from|of)\s*" + _OPTION_WORD + r"\s*$", re.I)
_OR_AFTER_RE = re.compile(r"[^.!?\n]*?\bor\b(?:\s+\w+){0,2}?\s+" + _OPTION_WORD + r"[A-Z]\b")
_FARTHER_RE = re.compile(r"\b(?:farther|further|farthest|furthest|more\s+distant|away)\b", re.I)
# after a leading comparative, what introduces the option it is said of
_IS_THEN_RE = re.compile(
    r"(?:\b(?:is|would\s+be|appears\s+to\s+be|seems\s+to\s+be|must\s+be)|=)"
    r"(?:\s+(?:probably|likely|clearly|most\s+likely|definitely|actually|indeed))?\s*$|:\s*$", re.I)
_CONDITIONAL_RE = re.compile(r"\b(?:if|whether|unless|assuming|suppose)\b", re.I)
# a clause set off after the subject ("Point B, which is closer to the bottom of the image, ...");
# a comparative inside it, before its closing comma, describes something else, not the subject's depth
_ASIDE_OPEN_RE = re.compile(r"\s*\)?\s*,\s*(?:which|who|that|where|located|situated|positioned|lying)\b", re.I)


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    letter: str


@dataclass(frozen=True)
class Claim:
    letter: str
    superlative: bool
    negated: bool


def _sentences(text: str) -> list[tuple[int, int]]:
    # a full stop inside a number ("0.5") or after a single capital ("point A. ") ends the
    # sentence only when followed by a space and a capital or the end
    bounds, start = [], 0
    for m in re.finditer(r"[!?\n]|\.(?=\s+[A-Z(]|\s*$)", text):
        bounds.append((start, m.end()))
        start = m.end()
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


def claims_in(text: str, mentions: Sequence[Mention]) -> list[Claim]:
    """Every closer/closest claim in ``text`` about an option named by ``mentions``."""
    out: list[Claim] = []
    mentions = sorted(mentions, key=lambda m: m.start)
    starts = [m.start for m in mentions]
    for s_start, s_end in _sentences(text):
        ms = mentions[bisect_left(starts, s_start) : bisect_left(starts, s_end)]
        if not ms or text[s_start:s_end].rstrip().endswith("?"):
            continue  # a question (the prompt echoed) asserts nothing
        for comp in _COMPARATIVE_RE.finditer(text, s_start, s_end):
            if _CONDITIONAL_RE.search(text, max(s_start, comp.start() - 2 * _SUBJECT_WINDOW), comp.start()):
                continue  # "if A is closer, ...", "whether B is closer": not asserted
            superlative = comp.group(1).lower() in _SUPERLATIVE
            claim = _subject_first(text, s_start, ms, comp) or _comparative_first(text, s_end, ms, comp)
            if claim is not None:
                out.append(Claim(claim[0], superlative, claim[1]))
    return out


_SUBJECT_WINDOW = 160  # characters between a subject and its comparative, at most
_TARGET_WINDOW = 80  # characters between a leading comparative and the option it names, at most


def _subject_first(text: str, s_start: int, ms: Sequence[Mention], comp: re.Match) -> tuple[str, bool] | None:
    """``<option> [clauses] <verb> [not] closer``: the option right before the comparative."""
    before = [m for m in ms if comp.start() - _SUBJECT_WINDOW <= m.start and m.end <= comp.start()]
    if not before:
        return None
    subject = before[-1]
    between = text[subject.end : comp.start()]
    if not _LINK_VERB_RE.search(between) or _FARTHER_RE.search(between):
        return None
    aside = _ASIDE_OPEN_RE.match(between)
    if aside and "," not in between[aside.end():]:
        return None  # "A, which is closer to the window, is farther": the comparative is the aside's
    if re.search(r"\bthan\b", between, re.I) or len(between) > _SUBJECT_WINDOW:
        return None  # the comparative belongs to another clause
    lead = text[max(s_start, subject.start - 40) : subject.start]
    if _JOINED_RE.search(lead):
        return AMBIGUOUS, False  # "A or B is closer", "A and B are closer", "either A ..."
    if _COMPARED_BEFORE_RE.search(lead):
        return None  # "than B is ...", "whether B": not a subject of its own
    if _OR_AFTER_RE.match(text[comp.end() : comp.end() + _SUBJECT_WINDOW]):
        return AMBIGUOUS, False  # "A might be closer, or maybe B"
    return subject.letter, bool(_NEGATION_RE.search(between))


def _comparative_first(text: str, s_end: int, ms: Sequence[Mention], comp: re.Match) -> tuple[str, bool] | None:
    """``the point closest to the camera is (point) C``: the first option after "is" / ":"."""
    after = [m for m in ms if comp.end() <= m.start <= comp.end() + _TARGET_WINDOW]
    if not after:
        return None
    target = after[0]
    between = text[comp.end() : target.start]
    head = re.sub(r"\(\s*$", "", between)
    head = re.sub(r"\b(?:the\s+|a\s+|an\s+)?(?:point|option|letter|marker|one|object)?\s*$", "", head.rstrip(), flags=re.I)
    head = re.sub(r"\b(?:the|a|an)\s*$", "", head.rstrip(), flags=re.I)
    if not _IS_THEN_RE.search(head) or len(between) > _TARGET_WINDOW or re.search(r"\bthan\b", between, re.I):
        return None
    rest = text[target.end : min(s_end, target.end + _TARGET_WINDOW)]
    if re.match(r"\s*(?:,?\s*(?:or|and)\b)", rest, re.I):
        return AMBIGUOUS, False  # "the closest is A or B"
    return target.letter, bool(_NEGATION_RE.search(between))


def decide(claims: Sequence[Claim]) -> str | None:
    """The one option the claims commit to; ``AMBIGUOUS`` when they disagree or negate; None without claims."""
    if not claims:
        return None
    if any(c.letter == AMBIGUOUS or c.negated for c in claims):
        return AMBIGUOUS
    superlatives = {c.letter for c in claims if c.superlative}
    letters = superlatives or {c.letter for c in claims}
    return letters.pop() if len(letters) == 1 else AMBIGUOUS
