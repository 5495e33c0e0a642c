"""``ptok score`` and what it cannot score (issue 21.2): the benchmark's own reject reason for
an answer to a question the benchmark rejected, a UTF-8 BOM in questions and answers files,
a clear error for a UTF-16 answers file, and the rejects stored in ``eval_answer_rejects``."""

import codecs
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from evaluation.answer_files import AnswersFileError, score_answers_by_subset
from evaluation.benchmarks import split_rows
from evaluation.benchmarks.demo import write_demo_benchmarks
from evaluation.benchmarks.hardblink import image_dir, questions_file
from evaluation.benchmarks.registry import read_subsets
from perception_tokens.demo.scenes import generate_scene


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    rng = np.random.default_rng(0)
    scenes = [generate_scene(rng, 160, 120) for _ in range(6)]
    root = tmp_path_factory.mktemp("bench")
    return root, write_demo_benchmarks(root, scenes, seed=5)


@pytest.fixture
def hardblink(demo, tmp_path):
    """A private copy of the demo HardBLINK (tests damage it)."""
    root, manifest = demo
    shutil.copytree(root / "hardblink", tmp_path / "hardblink")
    return tmp_path / "hardblink", manifest


def gold_lines(manifest, subset: str) -> list[str]:
    return [json.dumps({"question_id": int(q), "text": f"({g})"}) + "\n"
            for (b, s, q), g in sorted(manifest.answers.items()) if b == "HardBLINK" and s == subset]


def _first_question(root: Path) -> tuple[str, str]:
    first = json.loads((root / questions_file(3)).read_text().splitlines()[0])
    return str(first["question_id"]), first["image"]


def test_an_answer_to_a_question_rejected_for_its_missing_image_gets_the_benchmarks_reason(hardblink, tmp_path):
    """Before the fix the answer was rejected as "answer without question"."""
    root, manifest = hardblink
    qid, image = _first_question(root)
    (root / image_dir(3) / image).unlink()
    rows, question_rejects = split_rows(read_subsets("hardblink", root, "3points"))
    answers = tmp_path / "a.jsonl"
    answers.write_text("".join(gold_lines(manifest, "3points")))
    result = score_answers_by_subset(rows, answers, "3points", ids_repeat=True, question_rejects=question_rejects)
    assert [(r.record_id, r.reason) for r in result.rejects] == [
        (qid, f"question rejected by HardBLINK ({questions_file(3)}): missing image {image!r}")]
    n = len(gold_lines(manifest, "3points"))
    assert [(s["n"], s["n_correct"]) for s in result.scores] == [(n - 1, n - 1)]


def test_a_questions_file_with_a_utf8_bom_loses_no_question(hardblink, tmp_path):
    """Before the fix the BOM made line 1 malformed JSON: its question was rejected and its
    answer reported as "answer without question"."""
    root, manifest = hardblink
    path = root / questions_file(3)
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    rows, question_rejects = split_rows(read_subsets("hardblink", root, "3points"))
    assert question_rejects == []
    answers = tmp_path / "a.jsonl"
    answers.write_text("".join(gold_lines(manifest, "3points")))
    result = score_answers_by_subset(rows, answers, "3points", ids_repeat=True)
    n = len(gold_lines(manifest, "3points"))
    assert result.rejects == [] and [(s["n"], s["n_correct"]) for s in result.scores] == [(n, n)]


def test_an_answers_file_with_a_utf8_bom_keeps_its_first_line(hardblink, tmp_path):
    """Before the fix the first answer was rejected as a malformed JSON line and its question unanswered."""
    root, manifest = hardblink
    rows, _ = split_rows(read_subsets("hardblink", root, "3points"))
    answers = tmp_path / "bom.jsonl"
    answers.write_bytes(codecs.BOM_UTF8 + "".join(gold_lines(manifest, "3points")).encode())
    result = score_answers_by_subset(rows, answers, "3points", ids_repeat=True)
    n = len(gold_lines(manifest, "3points"))
    assert result.rejects == [] and [(s["n"], s["n_correct"], s["n_unparsed"]) for s in result.scores] == [(n, n, 0)]


@pytest.mark.parametrize("encoding, named", [("utf-16", "UTF-16-LE"), ("utf-16-be", "NUL bytes")])
def test_a_utf16_answers_file_is_a_clear_encoding_error(hardblink, tmp_path, encoding, named):
    """Before the fix every line became a "malformed JSON line" reject and the file scored as unanswered."""
    root, manifest = hardblink
    rows, _ = split_rows(read_subsets("hardblink", root, "3points"))
    answers = tmp_path / "utf16.jsonl"
    answers.write_bytes("".join(gold_lines(manifest, "3points")).encode(encoding))
    with pytest.raises(AnswersFileError, match=rf"answers file {answers}: .*{named}.*save it as UTF-8"):
        score_answers_by_subset(rows, answers, "3points", ids_repeat=True)


def test_ptok_score_shows_and_stores_the_benchmarks_reject_reason(hardblink, tmp_path, monkeypatch, capsys):
    from pipeline_lib.settings import settings_from_dict
    from pipelines import cli

    root, manifest = hardblink
    qid, image = _first_question(root)
    (root / image_dir(3) / image).unlink()
    answers = tmp_path / "a.jsonl"
    answers.write_text("".join(gold_lines(manifest, "3points")))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    settings = settings_from_dict({"storage": {"root": str(tmp_path / "storage")}, "demo": {"enabled": False}})
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    rc = cli.main(["score", "--benchmark", "hardblink", "--subset", "3points", "--root", str(root), "--answers", str(answers)])
    out = capsys.readouterr().out
    assert rc == 0, out
    reason = f"question rejected by HardBLINK ({questions_file(3)}): missing image {image!r}"
    assert f"rejected {qid}: {reason}" in " ".join(out.split())
    stored = pq.read_table(tmp_path / "storage" / "eval_answer_rejects.parquet").to_pylist()
    assert [(r["record_id"], r["reason"], r["answers_file"]) for r in stored] == [(qid, reason, str(answers))]
