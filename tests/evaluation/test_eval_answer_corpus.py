"""The labelled corpus of free-form answers (tests/data/answers/corpus.jsonl): zero wrong
extractions, and how many committed answers are read (coverage), per style.

A wrong extraction is a parsed answer that differs from the label, or any answer read from a
text whose label is "no committed answer" (a guess). Unparsed committed answers only lower
coverage: they are counted wrong in scores, never turned into a guess.
"""

import json
import sys
from collections import Counter
from pathlib import Path

from evaluation.parsing import parse_answer

CORPUS = Path(__file__).parents[1] / "data" / "answers" / "corpus.jsonl"


def load() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_corpus_is_what_its_script_writes(tmp_path, monkeypatch):
    sys.path.insert(0, str(CORPUS.parent))
    try:
        import make_corpus
    finally:
        sys.path.remove(str(CORPUS.parent))
    rows = make_corpus.point_rows() + make_corpus.object_rows() + make_corpus.count_rows()
    assert rows == load()
    shapes = CORPUS.with_name("compat_shapes.jsonl").read_text(encoding="utf-8").splitlines()
    assert make_corpus.compat_rows() == [json.loads(line) for line in shapes]


def test_no_wrong_extraction_and_coverage_per_style():
    rows = load()
    assert len(rows) >= 300
    wrong, answered, read = [], Counter(), Counter()
    for r in rows:
        got = parse_answer(r["text"], r)
        if got is not None and got != r["expected"]:
            wrong.append((r["style"], r["text"], r["expected"], got))
        if r["expected"] is not None:
            answered[r["style"]] += 1
            read[r["style"]] += got == r["expected"]
    report = "\n".join(f"  {style:40s} {read[style]:3d}/{answered[style]:3d}" for style in sorted(answered))
    coverage = sum(read.values()) / sum(answered.values())
    print(f"\n{len(rows)} answers, {len(wrong)} wrong extractions, coverage {100 * coverage:.1f}% "
          f"({sum(read.values())}/{sum(answered.values())} committed answers read)\n{report}")
    assert wrong == []
    assert coverage == 1.0, report
    refused = [r for r in rows if r["expected"] is None]
    assert len(refused) >= 100 and all(parse_answer(r["text"], r) is None for r in refused)
