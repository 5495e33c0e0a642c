"""HardBLINK, as released with Aurora: relative depth with 3, 4 or 5 circled points.

Layout under ``root``::

    questions/blink_{3,4,5}pointscenter_questions.jsonl   {"question_id", "image", "text", "category"}
    answers/blink_{3,4,5}pointscenter_answers.jsonl       {"question_id", "text": "(A)", "category"}
    images/blink{3,4,5}pointscenter/<n>.png

The question carries no options: the valid answers are the letters of the points
(A–C, A–D, A–E).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from evaluation.benchmarks.records import (
    MissingBenchmarkFile,
    Reject,
    reject,
    gold_letter,
    iter_answered_questions,
    letters,
    read_answers_jsonl,
    read_image_file,
)

BENCHMARK = "HardBLINK"
POINT_COUNTS = (3, 4, 5)


def questions_file(n_points: int) -> str:
    return f"questions/blink_{n_points}pointscenter_questions.jsonl"


def answers_file(n_points: int) -> str:
    return f"answers/blink_{n_points}pointscenter_answers.jsonl"


def image_dir(n_points: int) -> str:
    return f"images/blink{n_points}pointscenter"


def subset_name(n_points: int) -> str:
    return f"{n_points}points"


def present_point_counts(root: str | Path) -> list[int]:
    """The point counts whose questions file is under ``root``."""
    return [n for n in POINT_COUNTS if (Path(root) / questions_file(n)).is_file()]


def read_hardblink(root: str | Path, point_counts: Iterable[int] | None = None) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of HardBLINK for each number of points in ``point_counts``.

    ``None`` reads every subset present and fails only when none is; a subset asked for must
    be present (its questions, answers and image folder).
    """
    root = Path(root)
    if point_counts is None:
        point_counts = present_point_counts(root)
        if not point_counts:
            raise MissingBenchmarkFile(BENCHMARK, f"questions file of any subset ({questions_file(3)}, ...)", root)
    for n in point_counts:
        yield from _read_one(root, int(n))


def _read_answers(root: Path, n: int) -> tuple[dict[str, str], list[Reject]]:
    display = answers_file(n)
    path = root / display
    if not path.is_file():
        raise MissingBenchmarkFile(BENCHMARK, "answers file", path)
    return read_answers_jsonl(path, BENCHMARK, display)


def _read_one(root: Path, n: int) -> Iterator[dict | Reject]:
    display = questions_file(n)
    path = root / display
    if not path.is_file():
        raise MissingBenchmarkFile(BENCHMARK, "questions file", path)
    answers, answer_rejects = _read_answers(root, n)
    yield from answer_rejects
    valid = letters(n)
    for item in iter_answered_questions(path, BENCHMARK, display, answers, answers_file(n)):
        if isinstance(item, Reject):
            yield item
            continue
        qid, obj, text, answer = item
        gold = gold_letter(answer, valid)
        if gold is None:
            yield reject(BENCHMARK, answers_file(n), qid, f"answer {answer!r} is not one of {valid}")
            continue
        image_name = obj.get("image")
        # Images live in the subset's image folder: a name may not leave it.
        image = read_image_file(root / image_dir(n), image_name)
        image_rel = f"{image_dir(n)}/{image_name}"
        if isinstance(image, str):
            yield reject(BENCHMARK, display, qid, image)
            continue
        yield {
            "benchmark": BENCHMARK,
            "subset": subset_name(n),
            "question_id": qid,
            "question": text,
            "prompt": text,
            "choices": None,
            "valid_letters": valid,
            "gold": gold,
            "image_bytes": image,
            "image_file": image_rel,
            "answer_type": "letter",
            "category": obj.get("category"),
            "n_points": n,
        }
