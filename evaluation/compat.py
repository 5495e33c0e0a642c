"""The answer-matching rules other harnesses apply, per peer and version, so one answers file
can be scored exactly the way a given release would score it (``ptok score --compat
lmms-eval==0.7.3``). Each rule is this project's own code, written from the peer's released
source (``evaluation/compat_lmms_eval.py``, ``evaluation/compat_vlmevalkit.py``) and checked
question by question against the peer's own function by ``benchmarks/compat_differential.py``.

A rule is named ``<peer>==<version>``:

- ``lmms-eval==0.7.2`` and ``lmms-eval==0.7.3`` (PyPI releases);
- ``vlmevalkit==<commit>``: the commits that changed ``vlmeval/utils/matching_util.py``'s
  answer reading (``c3371551``, ``a67ace50``). A spec may also name a later commit listed in
  ``VLMEVALKIT_SAME_RULE`` or a date ``YYYY-MM-DD`` (the main branch at the end of that UTC day),
  which resolves to the rule in effect then; dates past ``VLMEVALKIT_CHECKED_THROUGH`` are refused.

``ptok`` is this project's own parser. Rules apply to letter questions; for number answers
(the counting sets) no peer rule is modelled and the result is ``None`` (shown as n/a).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from evaluation.compat_lmms_eval import blink_letter_073, blink_letters, leading_letter
from evaluation.compat_vlmevalkit import NO_ANSWER, can_infer
from evaluation.parsing import parse_answer

OWN = "ptok"
LMMS_EVAL = "lmms-eval"
VLMEVALKIT = "vlmevalkit"


@dataclass(frozen=True)
class PeerRule:
    peer: str
    version: str  # a release, or a commit (8 hex digits)
    date: str  # the day the version came out (UTC): PyPI upload, or commit date
    read: Callable[[str, dict], str | None]
    source: Callable[[dict], str]  # the peer's file:function that gives the verdict on this row

    @property
    def name(self) -> str:
        return f"{self.peer}=={self.version}"


def _letters(row: dict) -> list[str]:
    return [str(v).upper() for v in (row.get("valid_letters") or [])]


def _options(row: dict) -> dict[str, str]:
    """Letter -> option text, as both peers see a question; HardBLINK lists no texts, the letters stand in."""
    letters = _letters(row)
    choices = row.get("choices") or letters
    return {letter: str(choice) for letter, choice in zip(letters, choices)}


def _is_cvbench(row: dict) -> bool:
    return str(row.get("benchmark", "")).replace("-", "").lower() == "cvbench"


def _lmms_source(row: dict) -> str:
    # HardBLINK has no lmms-eval task: BLINK's (it is BLINK's depth question with more points)
    task = "cv_bench" if _is_cvbench(row) else "blink"
    return f"lmms_eval/tasks/{task}/utils.py:_extract_answer_letter"


def _lmms_072(text: str, row: dict) -> str | None:
    return leading_letter(text) or None


def _lmms_073(text: str, row: dict) -> str | None:
    if _is_cvbench(row):
        return leading_letter(text) or None  # 0.7.3 changed BLINK's rule only
    n = len(row.get("choices") or []) or len(_letters(row))
    return blink_letter_073(text, blink_letters(n)) or None


def _vlmevalkit(answer_is_fallback: bool) -> Callable[[str, dict], str | None]:
    def read(text: str, row: dict) -> str | None:
        got = can_infer(text, _options(row), answer_is_fallback)
        return None if got in (None, NO_ANSWER) else got  # "Z": no answer, scored wrong
    return read


_MATCHING_UTIL = "vlmeval/utils/matching_util.py:can_infer"
RULES: tuple[PeerRule, ...] = (
    PeerRule(LMMS_EVAL, "0.7.2", "2026-06-24", _lmms_072, _lmms_source),
    PeerRule(LMMS_EVAL, "0.7.3", "2026-08-28", _lmms_073, _lmms_source),
    PeerRule(VLMEVALKIT, "c3371551", "2025-08-04", _vlmevalkit(False), lambda row: _MATCHING_UTIL),
    PeerRule(VLMEVALKIT, "a67ace50", "2026-06-17", _vlmevalkit(True), lambda row: _MATCHING_UTIL),
)
# later commits whose matching_util.py reads answers as the named one does (checked by reading each diff)
VLMEVALKIT_SAME_RULE = {"590f052a": "c3371551", "2cf2a36c": "a67ace50", "e8e78f05": "a67ace50"}
VLMEVALKIT_CHECKED_THROUGH = ("e8e78f05", "2026-08-18")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class CompatSpecError(ValueError):
    pass


def latest() -> list[PeerRule]:
    """The newest modelled version of each peer (bare ``--compat``)."""
    newest: dict[str, PeerRule] = {}
    for rule in RULES:
        if rule.peer not in newest or rule.date > newest[rule.peer].date:
            newest[rule.peer] = rule
    return list(newest.values())


def _vlmevalkit_rule(version: str) -> PeerRule:
    commits = {r.version: r for r in RULES if r.peer == VLMEVALKIT}
    if _DATE_RE.fullmatch(version):
        try:
            dt.date.fromisoformat(version)
        except ValueError as e:
            raise CompatSpecError(f"vlmevalkit=={version}: not a date ({e})") from None
        if version > VLMEVALKIT_CHECKED_THROUGH[1]:
            raise CompatSpecError(f"vlmevalkit=={version}: matching_util.py is checked through commit "
                                  f"{VLMEVALKIT_CHECKED_THROUGH[0]} ({VLMEVALKIT_CHECKED_THROUGH[1]}) only")
        in_effect = [r for r in commits.values() if r.date <= version]
        if not in_effect:
            raise CompatSpecError(f"vlmevalkit=={version}: rules before {min(r.date for r in commits.values())} are not modelled")
        return max(in_effect, key=lambda r: r.date)
    commit = version.lower()
    if len(commit) >= 7 and re.fullmatch(r"[0-9a-f]+", commit):
        for known in (*commits, *VLMEVALKIT_SAME_RULE):
            if commit.startswith(known) or known.startswith(commit):  # full hash or a 7+ digit prefix
                return commits[VLMEVALKIT_SAME_RULE.get(known, known)]
    listed = ", ".join([*commits, *VLMEVALKIT_SAME_RULE])
    raise CompatSpecError(f"vlmevalkit=={version}: not a modelled commit (known: {listed}); give a date YYYY-MM-DD instead")


def resolve(specs: Sequence[str]) -> list[PeerRule]:
    """Rules for ``--compat`` specs: ``lmms-eval==0.7.3``, ``vlmevalkit==<commit|date>``, a bare peer
    name (its newest version); no specs: the newest of each peer. Unknown ones raise CompatSpecError."""
    if not specs:
        return latest()
    out: list[PeerRule] = []
    for spec in specs:
        peer, _, version = spec.strip().partition("==")
        peer = {"lmms_eval": LMMS_EVAL, "vlmeval": VLMEVALKIT}.get(peer.lower(), peer.lower())
        if peer not in (LMMS_EVAL, VLMEVALKIT):
            raise CompatSpecError(f"--compat {spec!r}: unknown peer {peer!r}; expected {LMMS_EVAL} or {VLMEVALKIT}")
        if not version:
            rule = next(r for r in latest() if r.peer == peer)
        elif peer == VLMEVALKIT:
            rule = _vlmevalkit_rule(version)
        else:
            rule = next((r for r in RULES if r.peer == peer and r.version == version), None)
            if rule is None:
                known = ", ".join(r.version for r in RULES if r.peer == peer)
                raise CompatSpecError(f"--compat {spec!r}: {peer} {version} is not modelled (modelled: {known})")
        if rule not in out:
            out.append(rule)
    return out


def extract(rule: PeerRule | str, text: str | None, row: dict) -> str | None:
    """The answer ``rule`` reads from ``text`` for a benchmark row (None: no answer / n/a)."""
    if rule == OWN:
        return parse_answer(text, row)
    if not isinstance(rule, PeerRule):
        raise ValueError(f"unknown rule {rule!r}; expected {OWN!r} or a PeerRule (see evaluation.compat.resolve)")
    if row.get("answer_type") == "number" or text is None:
        return None
    return rule.read(str(text), row)


def compat_results(predictions: Iterable[dict], rules: Sequence[PeerRule]) -> list[dict[str, dict]]:
    """Per prediction: ``{rule name: {"pred", "correct", "peer", "version", "source"}}`` for ``ptok`` and
    each rule; ``correct`` is None where a rule does not apply (number answers)."""
    out = []
    for p in predictions:
        text = p.get("raw_output")
        pred = parse_answer(text, p)
        res = {OWN: {"pred": pred, "correct": pred is not None and pred == str(p["gold"]), "peer": OWN,
                     "version": None, "source": "evaluation/parsing.py:parse_answer"}}
        for rule in rules:
            entry = {"peer": rule.peer, "version": rule.version, "source": rule.source(p)}
            if p.get("answer_type") == "number":
                res[rule.name] = {"pred": None, "correct": None, **entry, "source": None}
                continue
            pred = extract(rule, text, p)
            res[rule.name] = {"pred": pred, "correct": pred is not None and pred == str(p["gold"]), **entry}
        out.append(res)
    return out


def compat_table(predictions: Sequence[dict], results: Sequence[dict[str, dict]]) -> list[dict]:
    """Per (benchmark, subset): n and ``pct``, accuracy % under each rule (None where a rule does not apply)."""
    groups: dict[tuple[str, str], list[dict[str, dict]]] = defaultdict(list)
    for p, r in zip(predictions, results):
        groups[(str(p["benchmark"]), str(p["subset"]))].append(r)
    rows = []
    for (bench, subset), rs in sorted(groups.items()):
        pct = {}
        for name in rs[0]:
            flags = [r[name]["correct"] for r in rs]
            pct[name] = None if any(f is None for f in flags) else 100.0 * sum(flags) / len(flags)
        rows.append({"benchmark": bench, "subset": subset, "n": len(rs), "pct": pct})
    return rows
