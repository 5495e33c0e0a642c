"""Open-ended counting sets released with Aurora (BLINK counting, SEED-Bench counting).

Same jsonl shape as LLaVA's ``model_vqa.py`` inputs. Layout under ``root`` for a set
named ``<name>`` (``blink_count``, ``seed_count``)::

    questions/<name>_questions.jsonl   {"question_id", "image", "text"}
    answers/<name>_answers.jsonl       {"question_id", "text": "3"}   (a number, or its string)
    images/<name>/<image>

Answers are whole numbers; rows have ``answer_type == "number"`` and no letters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from evaluation.benchmarks.records import (
    MissingBenchmarkFile,
    Reject,
    gold_number,
    iter_answered_questions,
    read_answers_jsonl,
    read_image_file,
)

BLINK_COUNT = ("BLINK-Count", "blink_count")
SEED_COUNT = ("SEED-Count", "seed_count")


def read_blink_counting(root: str | Path) -> Iterator[dict | Reject]:
    """Aurora's open-ended BLINK counting set (benchmark ``"BLINK-Count"``)."""
    return read_counting_jsonl(root, *BLINK_COUNT)


def read_seed_counting(root: str | Path) -> Iterator[dict | Reject]:
    """Aurora's open-ended SEED-Bench counting set (benchmark ``"SEED-Count"``)."""
    return read_counting_jsonl(root, *SEED_COUNT)


def read_counting_jsonl(root: str | Path, benchmark: str, name: str, subset: str = "count") -> Iterator[dict | Reject]:
    """Rows (or Rejects) of one open-ended counting set stored as questions/answers jsonl."""
    if "/" in name or "\\" in name or ".." in name:
        raise ValueError(f"counting set name {name!r} is not a plain name")
    root = Path(root)
    q_display = f"questions/{name}_questions.jsonl"
    a_display = f"answers/{name}_answers.jsonl"
    q_path, a_path = root / q_display, root / a_display
    if not q_path.is_file():
        raise MissingBenchmarkFile(benchmark, "questions file", q_path)
    if not a_path.is_file():
        raise MissingBenchmarkFile(benchmark, "answers file", a_path)
    return _rows(root, benchmark, name, subset, q_path, a_path, q_display, a_display)


def _rows(root, benchmark, name, subset, q_path, a_path, q_display, a_display) -> Iterator[dict | Reject]:
    answers, answer_rejects = read_answers_jsonl(a_path, benchmark, a_display)
    yield from answer_rejects
    images_root = root / "images" / name
    for item in iter_answered_questions(q_path, benchmark, q_display, answers, a_display):
        if isinstance(item, Reject):
            yield item
            continue
        qid, obj, text, answer = item
        gold = gold_number(answer)
        if gold is None:
            yield Reject(benchmark, a_display, qid, f"answer {answer!r} is not a whole number")
            continue
        image_name = obj.get("image")
        image = read_image_file(images_root, image_name)
        if isinstance(image, str):
            yield Reject(benchmark, q_display, qid, image)
            continue
        yield {
            "benchmark": benchmark,
            "subset": subset,
            "question_id": qid,
            "question": text,
            "prompt": text,
            "choices": None,
            "valid_letters": [],
            "gold": gold,
            "image_bytes": image,
            "image_file": f"images/{name}/{image_name}",
            "answer_type": "number",
            "category": obj.get("category"),
        }
