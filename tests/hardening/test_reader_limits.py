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
import shutil
from pathlib import Path

import pytest

from evaluation.benchmarks.hardblink import read_hardblink
from evaluation.benchmarks.records import split_rows as bench_split_rows
from evaluation.answer_files import score_answers_file
from perception_tokens.datasets.records import DatasetFormatError
from perception_tokens.datasets.refcoco import read_refcoco
from perception_tokens.images import BadImageError, read_image_bytes
from perception_tokens.paths import UnusablePathError, safe_join
from perception_tokens.safe_json import JsonInputError, loads_checked, parse_json_line
from perception_tokens.safe_pickle import PickleExpansionError, loads_restricted, object_budget
from pipeline_lib.yaml_bounded import YamlExpansionError, load_yaml_bounded

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
    with pytest.raises(YamlExpansionError, match="c.yaml: YAML aliases expand to more than 15 nodes"):
        load_yaml_bounded(text, "c.yaml", max_nodes=15)


# ============================================================================ at the asset level


def _hardblink_all_point_counts(corpus_dir: Path, dest: Path) -> Path:
    """The corpus's 3-point HardBLINK set, copied for 4 and 5 points too (the asset reads all three)."""
    base = corpus.build_base(corpus_dir) / "hardblink"
    shutil.copytree(base, dest)
    for n in (4, 5):
        shutil.copytree(dest / "images/blink3pointscenter", dest / f"images/blink{n}pointscenter")
        for kind in ("questions", "answers"):
            shutil.copyfile(dest / f"{kind}/blink_3pointscenter_{kind}.jsonl", dest / f"{kind}/blink_{n}pointscenter_{kind}.jsonl")
    return dest


@pytest.mark.slow
def test_source_and_benchmark_assets_finish_with_rejects_for_a_loop_a_huge_file_and_a_deep_line(tmp_path, monkeypatch):
    import dagster as dg
    import pyarrow.parquet as pq

    from pipelines.definitions import build_definitions
    from pipelines.runner import materialize_graph
    from pipeline_lib.settings import settings_from_dict

    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    case_dir, info = corpus.make_case("img_symlink_loop", tmp_path / "corpus")
    ade_root = case_dir / info["root"]
    with open(ade_root / "images" / "training" / "ADE_huge.jpg", "wb") as fh:
        fh.truncate(corpus.HUGE_FILE_BYTES)  # sparse: no disk, but 4 GiB if read
    hb = _hardblink_all_point_counts(tmp_path / "corpus", tmp_path / "hardblink")
    os.symlink("loop.png", hb / "images/blink4pointscenter/loop.png")
    questions = hb / "questions/blink_4pointscenter_questions.jsonl"
    lines = questions.read_text().splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), "image": "loop.png"})
    lines[1] = "[" * corpus.DEEP_NESTING
    questions.write_text("\n".join(lines) + "\n")

    settings = settings_from_dict({
        "storage": {"root": str(tmp_path / "storage")},
        "demo": {"enabled": True, "root": str(tmp_path / "demo"), "n_ade20k": 2, "n_lvis": 2, "n_refcoco": 2,
                 "width": 64, "height": 64},
        "datasets": {"ade20k_root": str(ade_root), "num_shards": 1},
        "evaluation": {"roots": {"hardblink": str(hb)}},
    })
    report = materialize_graph(build_definitions(settings), dg.DagsterInstance.ephemeral(),
                               ["ade20k_images", "benchmark_hardblink"], log=lambda m: None)
    assert not report.failed, report.failed

    storage = tmp_path / "storage"
    assert pq.read_table(storage / "ade20k_images.parquet").num_rows == corpus.DEMO_COUNTS["n_ade20k"]
    ade_rejects = {r["record_id"]: r["reason"] for r in pq.read_table(storage / "ade20k_images_rejects.parquet").to_pylist()}
    assert ade_rejects == {"ADE_loop": "unusable image path: symlink loop",
                           "ADE_huge": f"bad image: file too large: {corpus.HUGE_FILE_BYTES} bytes > limit {64 * 2**20}"}

    bench = pq.read_table(storage / "benchmark_hardblink.parquet").to_pylist()
    assert len(bench) == 3 * corpus.HARDBLINK_QUESTIONS - 2  # 9 questions, 2 broken in the 4-point set
    reasons = sorted(r["reason"] for r in pq.read_table(storage / "benchmark_hardblink_rejects.parquet").to_pylist())
    assert reasons == ["answer without question", "malformed JSON line: arrays/objects nested past 100 levels",
                       "unusable image path: symlink loop ('loop.png')"]


def test_deeply_nested_yaml_is_a_named_error_not_a_recursion_error():
    with pytest.raises(YamlExpansionError, match="deep.yaml: YAML nested deeper than the parser can follow"):
        load_yaml_bounded("a: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
