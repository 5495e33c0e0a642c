"""The zoom benchmark: multiple-choice questions about something small in a large image (a tiny
letter or digit on a label), with the ground-truth box of that thing: a question VPT's region
selection (arXiv 2502.17425 Sec. 3.1) is for, and the box its IoU / IoGT are scored against.

The project's own format (the demo writes it, :mod:`evaluation.benchmarks.zoom_demo`)::

    zoom/questions.jsonl   one object a line:
        {"question_id": "z0", "category": "letter" | "digit", "image": "images/z0.png",
         "question": "What is written on the small label?", "choices": ["K", "R", "B", "T"],
         "answer": "C", "bbox": [x, y, w, h]}
    zoom/images/z0.png

``bbox`` is COCO's ``[x, y, w, h]`` in pixels of the image as stored; rows carry it as
``gt_box`` ``[x0, y0, x1, y1]``. ``category`` is the subset. A record that cannot be used (bad
box, box outside the image, image missing or outside the root, answer not among the choices...)
is a reject row with the reason; a questions file over :data:`MAX_QUESTIONS_BYTES` is an error
naming it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

from evaluation.benchmarks.records import (
    BenchmarkFileError,
    MissingBenchmarkFile,
    Reject,
    format_choices_prompt,
    gold_letter,
    iter_questions,
    letters,
    read_image_file,
    reject,
)

BENCHMARK = "Zoom"
SUBSETS = ("letter", "digit")
QUESTIONS_FILE = "questions.jsonl"
MAX_QUESTIONS_BYTES = 16 * 2**20  # a few thousand questions are ~1 MB; more is not this format
MAX_CHOICES = 8
MAX_TEXT_CHARS = 2_000


def read_zoom(root: str | Path, subsets=None) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of ``root/questions.jsonl``; ``subsets``: keep these categories only."""
    root = Path(root)
    path = root / QUESTIONS_FILE
    if not path.is_file():
        raise MissingBenchmarkFile(BENCHMARK, "questions file", path)
    size = path.stat().st_size
    if size > MAX_QUESTIONS_BYTES:
        raise BenchmarkFileError(f"{BENCHMARK}: {path} is {size} bytes, over the {MAX_QUESTIONS_BYTES}-byte limit")
    keep = set(SUBSETS if subsets is None else subsets)
    return _rows(root, path, keep)


def _rows(root: Path, path: Path, keep: set[str]) -> Iterator[dict | Reject]:
    from perception_tokens.images import BadImageError, probe_image

    for item in iter_questions(path, BENCHMARK, QUESTIONS_FILE):
        if isinstance(item, Reject):
            yield item
            continue
        qid, obj = item
        problem = _record_problem(obj)
        if problem:
            yield reject(BENCHMARK, QUESTIONS_FILE, qid, problem)
            continue
        if obj["category"] not in keep:
            continue
        choices = [c.strip() for c in obj["choices"]]
        valid = letters(len(choices))
        gold = gold_letter(obj.get("answer"), valid)
        if gold is None:
            yield reject(BENCHMARK, QUESTIONS_FILE, qid, f"answer {obj.get('answer')!r} is not one of {valid}")
            continue
        image = read_image_file(root, obj.get("image"))
        if isinstance(image, str):
            yield reject(BENCHMARK, QUESTIONS_FILE, qid, image)
            continue
        try:
            info = probe_image(image)
        except BadImageError as exc:
            yield reject(BENCHMARK, QUESTIONS_FILE, qid, f"image {obj['image']!r} does not decode: {exc}")
            continue
        box = _box(obj["bbox"], info.width, info.height)
        if isinstance(box, str):
            yield reject(BENCHMARK, QUESTIONS_FILE, qid, box)
            continue
        question = obj["question"].strip()
        yield {
            "benchmark": BENCHMARK,
            "subset": obj["category"],
            "question_id": qid,
            "question": question,
            "prompt": format_choices_prompt(question, choices),
            "choices": choices,
            "valid_letters": valid,
            "gold": gold,
            "image_bytes": image,
            "image_file": obj["image"],
            "answer_type": "letter",
            "category": obj["category"],
            "task": "zoom",
            "gt_box": box,
        }


def _record_problem(obj: dict[str, Any]) -> str | None:
    category, question, choices = obj.get("category"), obj.get("question"), obj.get("choices")
    if category not in SUBSETS:
        return f"category {category!r} is not one of {list(SUBSETS)}"
    if not isinstance(question, str) or not question.strip():
        return "question without text"
    if len(question) > MAX_TEXT_CHARS:
        return f"question longer than {MAX_TEXT_CHARS} characters"
    if not isinstance(choices, list) or not 2 <= len(choices) <= MAX_CHOICES:
        return f"choices must be a list of 2 to {MAX_CHOICES} strings"
    if not all(isinstance(c, str) and c.strip() and len(c) <= MAX_TEXT_CHARS for c in choices):
        return "a choice is empty, not a string or too long"
    if "bbox" not in obj:
        return "no bbox (the ground-truth box [x, y, w, h])"
    return None


def _box(value: Any, width: int, height: int) -> list[float] | str:
    """COCO ``[x, y, w, h]`` -> ``[x0, y0, x1, y1]`` inside the ``width`` x ``height`` image, or why not."""
    if not isinstance(value, list) or len(value) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return f"bbox {value!r} is not four finite numbers [x, y, w, h]"
    x, y, w, h = (float(v) for v in value)
    if w <= 0 or h <= 0:
        return f"bbox {value!r} is empty (w and h must be > 0)"
    if x < 0 or y < 0 or x + w > width or y + h > height:
        return f"bbox {value!r} is not inside the {width}x{height} image"
    return [x, y, x + w, y + h]
