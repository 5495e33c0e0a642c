"""Open-ended counting sets released with Aurora (BLINK counting, SEED-Bench counting).

The released layout (``Data/evals/blink_counting``, ``Data/evals/seedbench`` in the Aurora
repository) is flat: two jsonl files in one folder, the images distributed separately::

    blink_counting/blinkcounting_questions.jsonl  {"question_id": 0, "image": "0.png", "text", "category"}
    blink_counting/blinkcounting_answers.jsonl    {"question_id": 0, "text": "1", "category": "count"}
    seedbench/seedbench_questions.jsonl           {"question_id": "101669", "text", "category", "image": "....jpg"}
    seedbench/seedbench_answers.jsonl             {"question_id": "101669", "text": "1"}

``images`` names the folder that holds the image files (default ``<root>/images``); an
image that is not there is a reject row, not a failure. Answers are whole numbers; rows
have ``answer_type == "number"`` and no letters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from evaluation.benchmarks.records import (
    MissingBenchmarkFile,
    Reject,
    reject,
    gold_number,
    iter_answered_questions,
    read_answers_jsonl,
    read_image_file,
)

# (benchmark name on rows, file prefix of the released jsonl files)
BLINK_COUNT = ("BLINK-Count", "blinkcounting")
SEED_COUNT = ("SEED-Count", "seedbench")


def questions_file(name: str) -> str:
    return f"{name}_questions.jsonl"


def answers_file(name: str) -> str:
    return f"{name}_answers.jsonl"


def read_blink_counting(root: str | Path, images: str | Path | None = None) -> Iterator[dict | Reject]:
    """Aurora's open-ended BLINK counting set (benchmark ``"BLINK-Count"``)."""
    return read_counting_jsonl(root, *BLINK_COUNT, images=images)


def read_seed_counting(root: str | Path, images: str | Path | None = None) -> Iterator[dict | Reject]:
    """Aurora's open-ended SEED-Bench counting set (benchmark ``"SEED-Count"``)."""
    return read_counting_jsonl(root, *SEED_COUNT, images=images)


def read_counting_jsonl(
    root: str | Path, benchmark: str, name: str, subset: str = "count", images: str | Path | None = None
) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of one open-ended counting set in its released flat layout."""
    if "/" in name or "\\" in name or ".." in name:
        raise ValueError(f"counting set name {name!r} is not a plain name")
    root = Path(root)
    q_display, a_display = questions_file(name), answers_file(name)
    q_path, a_path = root / q_display, root / a_display
    if not q_path.is_file():
        raise MissingBenchmarkFile(benchmark, "questions file", q_path)
    if not a_path.is_file():
        raise MissingBenchmarkFile(benchmark, "answers file", a_path)
    images_root = Path(images) if images is not None else root / "images"
    if not images_root.is_dir():
        raise MissingBenchmarkFile(benchmark, "image folder (released separately; pass --images DIR)", images_root)
    return _rows(images_root, benchmark, subset, q_path, a_path, q_display, a_display)


def _rows(images_root, benchmark, subset, q_path, a_path, q_display, a_display) -> Iterator[dict | Reject]:
    answers, answer_rejects = read_answers_jsonl(a_path, benchmark, a_display)
    yield from answer_rejects
    for item in iter_answered_questions(q_path, benchmark, q_display, answers, a_display):
        if isinstance(item, Reject):
            yield item
            continue
        qid, obj, text, answer = item
        gold = gold_number(answer)
        if gold is None:
            yield reject(benchmark, a_display, qid, f"answer {answer!r} is not a whole number")
            continue
        image_name = obj.get("image")
        image = read_image_file(images_root, image_name)
        if isinstance(image, str):
            yield reject(benchmark, q_display, qid, image)
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
            "image_file": f"{images_root.name}/{image_name}",
            "answer_type": "number",
            "category": obj.get("category"),
        }
