"""Scoring answers files per subset: HardBLINK needs --subset, BLINK scores each subset present,
a partial BLINK download is readable, an answers file matching no question is an error."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from evaluation.answer_files import AnswersFileError, score_answers_by_subset
from evaluation.benchmarks import split_rows
from evaluation.benchmarks.demo import write_demo_benchmarks
from evaluation.benchmarks.records import MissingBenchmarkFile
from evaluation.benchmarks.registry import get as get_benchmark, read_subsets
from perception_tokens.demo.scenes import generate_scene


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    rng = np.random.default_rng(0)
    scenes = [generate_scene(rng, 160, 120) for _ in range(6)]
    root = tmp_path_factory.mktemp("bench")
    manifest = write_demo_benchmarks(root, scenes, seed=5)
    return root, manifest


def gold_answers(path: Path, manifest, benchmark: str, subset: str, style=lambda g: f"({g})") -> Path:
    lines = [{"question_id": int(q) if q.isdigit() else q, "text": style(g), "answer_id": f"a{q}"}
             for (b, s, q), g in sorted(manifest.answers.items()) if b == benchmark and s == subset]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_hardblink_each_subset_scored_against_its_own_questions(demo, tmp_path):
    root, manifest = demo
    rows, _ = split_rows(read_subsets("hardblink", root / "hardblink"))
    assert sorted({r["subset"] for r in rows}) == ["3points", "4points", "5points"]
    for subset in ("3points", "4points", "5points"):
        answers = gold_answers(tmp_path / f"{subset}.jsonl", manifest, "HardBLINK", subset)
        result = score_answers_by_subset(rows, answers, subset, ids_repeat=True)
        n = sum(1 for k in manifest.answers if k[:2] == ("HardBLINK", subset))
        assert [(s["subset"], s["n"], s["n_correct"]) for s in result.scores] == [(subset, n, n)]
        assert result.rejects == []


def test_hardblink_without_subset_is_an_error_that_says_so(demo, tmp_path):
    root, manifest = demo
    rows, _ = split_rows(read_subsets("hardblink", root / "hardblink"))
    answers = gold_answers(tmp_path / "a.jsonl", manifest, "HardBLINK", "5points")
    assert get_benchmark("hardblink").ids_repeat_across_subsets
    with pytest.raises(AnswersFileError, match=r"ids repeat across subsets.*pass --subset NAME"):
        score_answers_by_subset(rows, answers, None, ids_repeat=True)
    # found from the rows themselves too, even without the benchmark's flag
    with pytest.raises(AnswersFileError, match="--subset"):
        score_answers_by_subset(rows, answers, None)


def test_answers_matching_no_question_of_the_subset_is_an_error(demo, tmp_path):
    root, _ = demo
    rows, _ = split_rows(read_subsets("hardblink", root / "hardblink", "3points"))
    stray = tmp_path / "stray.jsonl"
    stray.write_text('{"question_id": 9001, "text": "(A)"}\n{"question_id": 9002, "text": "(B)"}\n')
    with pytest.raises(AnswersFileError, match=r"none of its 2 answer ids is a question of HardBLINK subset '3points'"):
        score_answers_by_subset(rows, stray, "3points")
    with pytest.raises(AnswersFileError, match=r"no usable questions in subset '4points'"):
        score_answers_by_subset(rows, stray, "4points")
    with pytest.raises(ValueError, match=r"hardblink has no subset '6points'"):
        read_subsets("hardblink", root / "hardblink", "6points")


def test_blink_unique_ids_score_every_subset_present_in_its_own_row(demo, tmp_path):
    root, manifest = demo
    rows, _ = split_rows(read_subsets("blink", root / "blink"))
    answers = tmp_path / "blink.jsonl"
    depth = gold_answers(tmp_path / "d.jsonl", manifest, "BLINK", "Relative_Depth").read_text()
    count = gold_answers(tmp_path / "c.jsonl", manifest, "BLINK", "Counting", style=lambda g: "(A)").read_text()
    answers.write_text(depth + count + '{"question_id": "val_Nothing_1", "text": "(A)"}\n')
    result = score_answers_by_subset(rows, answers)
    got = {s["subset"]: (s["n"], s["n_correct"]) for s in result.scores}
    n_depth = sum(1 for k in manifest.answers if k[:2] == ("BLINK", "Relative_Depth"))
    counting_gold = [g for k, g in manifest.answers.items() if k[:2] == ("BLINK", "Counting")]
    assert got == {"Relative_Depth": (n_depth, n_depth), "Counting": (len(counting_gold), counting_gold.count("A"))}
    assert [(r.record_id, r.reason) for r in result.rejects] == [("val_Nothing_1", "answer without question")]
    # only the depth answers: only that subset is scored, no empty Counting row
    only = score_answers_by_subset(rows, gold_answers(tmp_path / "d2.jsonl", manifest, "BLINK", "Relative_Depth"))
    assert [s["subset"] for s in only.scores] == ["Relative_Depth"]


def test_blink_folder_with_one_subtask_is_readable(demo, tmp_path):
    root, manifest = demo
    partial = tmp_path / "blink"
    shutil.copytree(root / "blink" / "Relative_Depth", partial / "Relative_Depth")
    rows, _ = split_rows(read_subsets("blink", partial))
    assert {r["subset"] for r in rows} == {"Relative_Depth"}
    assert len(rows) == sum(1 for k in manifest.answers if k[:2] == ("BLINK", "Relative_Depth"))
    from evaluation.benchmarks import read_blink

    assert {r["subset"] for r in split_rows(read_blink(partial))[0]} == {"Relative_Depth"}  # the graph's default reader too
    with pytest.raises(MissingBenchmarkFile, match="Counting val split"):
        list(read_subsets("blink", partial, "Counting"))
    with pytest.raises(MissingBenchmarkFile, match="any subtask"):
        list(read_subsets("blink", tmp_path / "empty"))


def test_hardblink_folder_with_one_subset_is_readable(demo, tmp_path):
    root, _ = demo
    partial = tmp_path / "hb"
    for sub in ("questions", "answers"):
        (partial / sub).mkdir(parents=True)
        name = f"blink_4pointscenter_{sub}.jsonl"
        shutil.copy(root / "hardblink" / sub / name, partial / sub / name)
    shutil.copytree(root / "hardblink" / "images" / "blink4pointscenter", partial / "images" / "blink4pointscenter")
    rows, rejects = split_rows(read_subsets("hardblink", partial))
    assert {r["subset"] for r in rows} == {"4points"} and rejects == []
    with pytest.raises(MissingBenchmarkFile, match="blink_3pointscenter_questions.jsonl"):
        list(read_subsets("hardblink", partial, "3points"))
