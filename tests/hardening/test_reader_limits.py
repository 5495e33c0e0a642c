"""Reader limits: every input that once cost gigabytes, a whole asset or a nameless
traceback now ends in one reject or in an error naming the file (and line or field).

The corpus cases (tests/data/bad/make_bad_corpus.py) are checked for their reject or
message in test_bad_input.py; here are the properties those checks do not show: one bad
JSONL line costs one reject (and its orphaned answer), the limits sit where legitimate
inputs never reach them, and the helpers behind them refuse what they should.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from evaluation.benchmarks.hardblink import read_hardblink
from evaluation.benchmarks.records import split_rows as bench_split_rows
from evaluation.scoring import score_answers_file
from perception_tokens.datasets.records import DatasetFormatError
from perception_tokens.datasets.refcoco import read_refcoco
from perception_tokens.images import BadImageError, read_image_bytes
from perception_tokens.paths import UnusablePathError, safe_join
from perception_tokens.safe_json import JsonInputError, loads_checked, parse_json_line
from perception_tokens.safe_pickle import PickleExpansionError, loads_restricted, object_budget
from pipelines.settings import ConfigError, load_yaml_bounded

from test_bad_input import corpus  # noqa: E402  (the corpus module, loaded by path there)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("limits_corpus")


# ============================================================================ one bad JSONL line


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bench_deep_json_line", "malformed JSON line: arrays/objects nested past 100 levels"),
        ("bench_long_integer_line", "malformed JSON line: integer of 5000 digits (more than 4300 cannot be read)"),
    ],
)
def test_one_unparseable_benchmark_line_is_one_reject_not_an_aborted_read(corpus_dir, name, reason):
    case_dir, info = corpus.make_case(name, corpus_dir)
    rows, rejects = bench_split_rows(read_hardblink(case_dir / info["root"], point_counts=(corpus.HARDBLINK_POINTS,)))
    # Three question lines: two rows, the bad line, and the answer left without its question.
    assert sorted(r["question_id"] for r in rows) == sorted(
        str(q) for q in range(1, corpus.HARDBLINK_QUESTIONS + 1) if str(q) != info["orphan_answer"]
    )
    by_record = {r.record_id: r for r in rejects}
    assert set(by_record) == {f"line {info['bad_line']}", info["orphan_answer"]}
    bad = by_record[f"line {info['bad_line']}"]
    assert bad.reason == reason
    assert bad.file.startswith("questions/")
    assert by_record[info["orphan_answer"]].reason == "answer without question"


def test_one_unparseable_answer_line_is_one_reject_when_scoring(tmp_path):
    rows = [{"benchmark": "B", "subset": "s", "question_id": str(i), "gold": "A", "valid_letters": ["A", "B"],
             "answer_type": "letter", "choices": None} for i in (1, 2)]
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"question_id": 1, "text": "(A)"}) + "\n" + "[" * 50_000 + "\n")
    result = score_answers_file(rows, answers)
    assert [(r.record_id, r.reason) for r in result.rejects] == [
        ("line 2", "malformed JSON line: arrays/objects nested past 100 levels")
    ]
    assert [p["question_id"] for p in result.predictions] == ["1", "2"]


# ============================================================================ the JSON helper


def test_json_errors_name_source_and_line():
    with pytest.raises(JsonInputError) as err:
        loads_checked('{\n"a": 1,\n"b": ' + "1" * 4301 + "\n}", "x.json")
    assert str(err.value) == "x.json: line 3: integer of 4301 digits (more than 4300 cannot be read)"
    assert err.value.line == 3
    with pytest.raises(JsonInputError) as err:
        parse_json_line('{"a": [1,', "q.jsonl", 7)
    assert err.value.line == 7 and str(err.value).startswith("q.jsonl: malformed JSON at line 7 column")


def test_json_limits_leave_ordinary_documents_alone():
    # Digits and brackets inside strings are text; 4300 digits and 99 levels parse.
    text = json.dumps({"s": "9" * 10_000 + "[" * 500, "n": int("1" * 4300), "deep": json.loads("[" * 99 + "]" * 99)})
    assert loads_checked(text, "ok.json") == json.loads(text)


# ============================================================================ pickles


def test_shared_reference_bomb_is_refused_from_a_file_of_under_200_bytes(corpus_dir):
    case_dir, info = corpus.make_case("refcoco_pickle_shared_refs", corpus_dir)
    refs = case_dir / info["refs"]
    size = refs.stat().st_size
    assert size < 200
    with pytest.raises(DatasetFormatError) as err:
        read_refcoco(refs, case_dir / info["instances"])
    assert str(refs) in str(err.value)
    assert f"more than {object_budget(size)} objects" in str(err.value)


def test_small_sharing_in_a_pickle_still_loads_as_copies():
    # The same dict referenced three times (a memo reference): well within the budget.
    sentence = {"sent": "man on the left", "tokens": ["man", "left"]}
    data = pickle.dumps([{"sentences": [sentence, sentence]}, sentence], protocol=2)
    loaded = loads_restricted(data, source="refs.p")
    assert loaded == [{"sentences": [{"sent": "man on the left", "tokens": ["man", "left"]}] * 2},
                      {"sent": "man on the left", "tokens": ["man", "left"]}]


def test_the_object_budget_counts_the_expanded_tree():
    nested: list = []
    for _ in range(10):
        nested = [nested, nested]  # 2**11 - 1 = 2047 lists once expanded
    data = pickle.dumps(nested, protocol=2)
    assert len(pickle.loads(data)) == 2  # noqa: S301 - our own bytes
    loads_restricted(data, source="p", max_objects=2047)
    with pytest.raises(PickleExpansionError, match="more than 2046 objects"):
        loads_restricted(data, source="p", max_objects=2046)


# ============================================================================ files and paths


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"\0" * 97)
    assert read_image_bytes(path, max_bytes=100) == path.read_bytes()
    with pytest.raises(BadImageError) as err:
        read_image_bytes(path, max_bytes=99)
    assert err.value.reason == "file too large" and "100 bytes > limit 99" in str(err.value)


def test_a_fifo_named_like_an_image_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    with pytest.raises(BadImageError) as err:
        read_image_bytes(fifo)
    assert err.value.reason == "not a regular file"


def test_symlink_loops_are_unusable_paths_not_crashes(tmp_path):
    os.symlink(tmp_path / "b.jpg", tmp_path / "a.jpg")
    os.symlink(tmp_path / "a.jpg", tmp_path / "b.jpg")
    with pytest.raises(UnusablePathError) as err:
        safe_join(tmp_path, "a.jpg")
    assert err.value.why == "symlink loop"


# ============================================================================ YAML


def test_yaml_aliases_within_the_bound_still_load():
    text = "base: &b {lr: 0.001, epochs: 3}\nvqvae: *b\nother:\n  <<: *b\n  epochs: 5\n"
    assert load_yaml_bounded(text, "c.yaml") == {
        "base": {"lr": 0.001, "epochs": 3}, "vqvae": {"lr": 0.001, "epochs": 3}, "other": {"lr": 0.001, "epochs": 5}}


def test_yaml_alias_bound_counts_expanded_nodes():
    # mapping 1 + key "a" 1 + [x, x, x] 4 + key "b" 1 + [*a, *a] (1 + 4 + 4) = 16 nodes expanded
    text = "a: &a [x, x, x]\nb: [*a, *a]\n"
    assert load_yaml_bounded(text, "c.yaml", max_nodes=16)["b"] == [["x"] * 3] * 2
    with pytest.raises(ConfigError, match="c.yaml: YAML aliases expand to more than 15 nodes"):
        load_yaml_bounded(text, "c.yaml", max_nodes=15)
