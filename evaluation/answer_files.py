"""Scoring a model's answers file (LLaVA ``model_vqa.py`` jsonl) against benchmark rows.

Each line is ``{"question_id", "text", ...}``; other fields (``answer_id``, ``model_id``,
``prompt``...) are kept on the prediction row under ``answer_record``. Which subset an
answers file is for is decided here, never guessed silently: HardBLINK question ids restart
in every subset, so there the subset must be named; where ids are unique (BLINK's
``val_Relative_Depth_1``) every subset whose ids occur is scored, each on its own.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from perception_tokens.safe_json import JsonInputError, open_jsonl, parse_json_line

from evaluation.benchmarks.records import Reject, reject
from evaluation.parsing import parse_answer
from evaluation.scoring import score


class AnswersFileError(ValueError):
    """The answers file cannot be scored as asked (wrong subset, no matching question ids)."""


@dataclass
class AnswerFileScore:
    """Predictions joined from an answers file, their scores, and what could not be joined."""

    predictions: list[dict]
    scores: list[dict]
    rejects: list[Reject] = field(default_factory=list)


def read_model_answers(path: str | os.PathLike, benchmark: str = "?") -> tuple[dict[str, dict], list[Reject]]:
    """``question_id -> answer record`` of an answers file; malformed lines, lines without an id
    and second answers to the same question become Rejects."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"answers file not found: {path}")
    answers: dict[str, dict] = {}
    rejects: list[Reject] = []
    try:
        fh = open_jsonl(path)  # a UTF-8 BOM is skipped (LVIS files accept one too); UTF-16 is an error
    except JsonInputError as exc:
        raise AnswersFileError(f"answers file {exc}") from None
    with fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = parse_json_line(line, path.name, line_no)
            except JsonInputError as exc:  # malformed, nested too deep, a 5000-digit number: this line only
                rejects.append(reject(benchmark, path.name, f"line {line_no}", f"malformed JSON line: {exc.problem}"))
                continue
            if not isinstance(rec, dict) or rec.get("question_id") is None:
                rejects.append(reject(benchmark, path.name, f"line {line_no}", "answer line without question_id"))
                continue
            qid = str(rec["question_id"])
            if qid in answers:
                rejects.append(reject(benchmark, path.name, qid, "duplicate answer"))
            else:
                answers[qid] = rec
    return answers, rejects


def _index_rows(benchmark_rows: Iterable[dict]) -> dict[str, dict]:
    rows_by_id: dict[str, dict] = {}
    for row in benchmark_rows:
        qid = str(row["question_id"])
        if qid in rows_by_id:
            raise ValueError(
                f"question_id {qid!r} appears twice in the benchmark rows "
                f"({rows_by_id[qid]['subset']!r}, {row['subset']!r}); score one subset per answers file"
            )
        rows_by_id[qid] = row
    return rows_by_id


def join_answers(rows_by_id: dict[str, dict], answers: dict[str, dict]) -> list[dict]:
    """One prediction per benchmark row: parsed ``pred``, ``correct``; a row with no answer is
    unparsed (``missing_answer=True``), never dropped."""
    predictions = []
    for qid, row in rows_by_id.items():
        rec = answers.get(qid)
        text = rec.get("text") if rec else None
        text = text if isinstance(text, str) else None
        pred = parse_answer(text, row)
        predictions.append(
            {
                **{k: v for k, v in row.items() if k not in ("image_bytes", "extra_image_bytes")},
                "raw_output": text,
                "pred": pred,
                "correct": pred is not None and pred == str(row["gold"]),
                "missing_answer": rec is None,
                "answer_record": {k: v for k, v in (rec or {}).items() if k not in ("question_id", "text")},
            }
        )
    return predictions


def score_answers_file(benchmark_rows: Iterable[dict], answers_jsonl_path: str | os.PathLike) -> AnswerFileScore:
    """Score an answers file against rows with unique question ids (one subset of HardBLINK).

    An answer with no question, a duplicate answer or a malformed line becomes a Reject.
    """
    rows_by_id = _index_rows(benchmark_rows)
    bench = next(iter(rows_by_id.values()))["benchmark"] if rows_by_id else "?"
    answers, rejects = read_model_answers(answers_jsonl_path, bench)
    name = Path(answers_jsonl_path).name
    rejects += [reject(bench, name, qid, "answer without question") for qid in answers if qid not in rows_by_id]
    predictions = join_answers(rows_by_id, answers)
    return AnswerFileScore(predictions=predictions, scores=score(predictions), rejects=rejects)


def _unmatched_answer(bench: str, answers_name: str, qid: str, question_rejects: dict[str, Reject]) -> Reject:
    """The reject of an answer whose id is no usable question: the benchmark's own reason when
    the benchmark rejected that question (missing image, duplicate id...), never a guess."""
    rejected = question_rejects.get(qid)
    if rejected is None:
        return reject(bench, answers_name, qid, "answer without question")
    return reject(bench, answers_name, qid, f"question rejected by {bench} ({rejected.file}): {rejected.reason}")


def score_answers_by_subset(
    benchmark_rows: Iterable[dict], answers_jsonl_path: str | os.PathLike, subset: str | None = None,
    ids_repeat: bool = False, question_rejects: Iterable[Reject] = (),
) -> AnswerFileScore:
    """Score an answers file against the subset it answers.

    ``subset`` given: only that subset's questions; an answers file none of whose ids is a
    question of it is an error. ``subset`` None: an error when question ids repeat across the
    subsets present (``ids_repeat``, or found so in the rows); otherwise every subset whose ids
    occur in the answers file is scored, each in its own row, and an answer whose id is no
    question of any subset is a Reject. ``question_rejects`` (the benchmark reader's rejects)
    give such an answer the benchmark's reason when the benchmark rejected its question.
    """
    rejected_questions = {r.record_id: r for r in question_rejects}
    path = Path(answers_jsonl_path)
    by_subset: dict[str, list[dict]] = defaultdict(list)
    for row in benchmark_rows:
        by_subset[str(row["subset"])].append(row)
    if not by_subset:
        raise AnswersFileError("no benchmark questions to score against")
    bench = next(iter(by_subset.values()))[0]["benchmark"]
    if subset is not None:
        if subset not in by_subset:
            raise AnswersFileError(f"{bench} has no usable questions in subset {subset!r}; present: {sorted(by_subset)}")
        chosen = {subset: _index_rows(by_subset[subset])}
    else:
        chosen = {name: _index_rows(rows) for name, rows in sorted(by_subset.items())}
        seen: dict[str, str] = {}
        for name, rows_by_id in chosen.items():
            for qid in rows_by_id:
                if qid in seen:
                    ids_repeat = True
                    break
                seen[qid] = name
        if ids_repeat and len(chosen) > 1:
            raise AnswersFileError(
                f"{bench} question ids repeat across subsets {sorted(chosen)}: an answers file cannot say which "
                f"subset it answers; pass --subset NAME (one of {sorted(chosen)})")
    answers, rejects = read_model_answers(path, bench)
    matched = {name: rows for name, rows in chosen.items() if any(qid in rows for qid in answers)}
    if not matched:
        where = f"subset {subset!r}" if subset is not None else f"any subset ({sorted(chosen)})"
        why = sum(qid in rejected_questions for qid in answers)
        raise AnswersFileError(f"{path}: none of its {len(answers)} answer ids is a question of {bench} {where}"
                               + (f" ({why} of them are questions {bench} rejected)" if why else ""))
    known = set().union(*(rows.keys() for rows in matched.values()))
    rejects += [_unmatched_answer(bench, path.name, qid, rejected_questions) for qid in answers if qid not in known]
    predictions = [p for rows in matched.values() for p in join_answers(rows, answers)]
    return AnswerFileScore(predictions=predictions, scores=score(predictions), rejects=rejects)
