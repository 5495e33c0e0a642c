"""The differential check (benchmarks/compat_differential.py): the peers' own extraction
functions, fetched from the package registry (lmms-eval) or a git copy (VLMEvalKit), agree with
each ``--compat`` rule on every answer of the corpus. Without a registry or a git copy the
peer's test is skipped with the reason, never failed."""

import os
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import compat_differential as cd  # noqa: E402

from evaluation.compat import LMMS_EVAL, RULES, VLMEVALKIT, resolve  # noqa: E402


def _letter_answers() -> int:
    return len(cd.load_corpus(cd.DEFAULT_CORPORA))


def test_compare_lists_each_disagreement_with_the_peer():
    rows = list(cd.question_rows([{"text": "The answer is B.", "valid_letters": ["A", "B"], "choices": None},
                                  {"text": "A", "valid_letters": ["A", "B"], "choices": None}]))
    leading_only = resolve(["lmms-eval==0.7.2"])[0]  # reads "T" from "The answer is B."

    def peer_reads_answer_phrase(row, text):
        return "B" if "answer is B" in text else text.strip()[0]

    n, found = cd.compare(leading_only, peer_reads_answer_phrase, rows)
    assert n == 4  # two answers, each as a BLINK and a CV-Bench question
    assert [(d["task"], d["peer"], d["ours"]) for d in found] == [("BLINK", "B", "T"), ("CV-Bench", "B", "T")]


def test_corpus_line_that_is_not_json_is_named(tmp_path):
    bad = tmp_path / "answers.jsonl"
    bad.write_text('{"text": "A", "valid_letters": ["A"]}\n{oops\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"answers.jsonl:2: not JSON"):
        cd.load_corpus([bad])


def _check(peer: str, **kwargs):
    rules = [r for r in RULES if r.peer == peer]
    report = cd.run(rules=rules, **kwargs)
    assert report.disagreements == []
    names = [r.name if v == r.version else f"{r.name} vs {r.peer} {v}" for r, v in cd.checks(rules)]
    assert report.checked == {name: 2 * _letter_answers() for name in names if name not in report.skipped}
    if report.skipped:  # the registry or copy did not answer for these: no verdict on them here
        pytest.skip("; ".join(f"{k}: {v}" for k, v in report.skipped.items()))


def test_lmms_eval_releases_agree_with_compat_on_every_answer():
    _check(LMMS_EVAL)


def test_vlmevalkit_commits_agree_with_compat_on_every_answer():
    git = os.environ.get("PTOK_VLMEVALKIT_GIT")
    if not git:
        pytest.skip("set PTOK_VLMEVALKIT_GIT to a git copy of open-compass/VLMEvalKit (it is not on PyPI)")
    _check(VLMEVALKIT, vlmevalkit_git=Path(git))


def test_main_prints_each_disagreement_and_fails(monkeypatch, capsys):
    report = cd.Report(checked={"lmms-eval==0.7.3": 2}, skipped={"vlmevalkit==a67ace50": "no git copy"})
    report.disagreements = [{"check": "lmms-eval==0.7.3", "rule": "lmms-eval==0.7.3", "task": "BLINK", "letters": "AB",
                             "text": "Point A.", "peer": "A", "ours": None}]
    monkeypatch.setattr(cd, "run", lambda *a, **k: report)
    assert cd.main([]) == 1
    out = capsys.readouterr().out
    assert "SKIPPED vlmevalkit==a67ace50: no git copy" in out
    assert "lmms-eval==0.7.3: 2 questions, 1 disagreement(s)" in out
    assert "DISAGREE lmms-eval==0.7.3 BLINK [AB] peer='A' ours=None: 'Point A.'" in out
    report.disagreements = []
    assert cd.main([]) == 0
