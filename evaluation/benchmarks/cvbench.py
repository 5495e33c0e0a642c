"""CV-Bench (Hugging Face release ``nyu-visionx/CV-Bench``), Parquet.

Layout under ``root``: ``test_2d.parquet`` / ``test_3d.parquet`` (or any ``*.parquet``
at the root), else ``data/*.parquet``. Columns: ``idx, type (2D/3D), task (Count,
Relation, Depth, Distance), image {bytes, path}, question, choices, answer ("(C)"),
prompt, source (ADE20K, COCO, Omni3D)``. The subset of a row is its task; ``source``
is kept because CV-Bench's official score averages per source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from evaluation.benchmarks._parquet import find_parquet_files, iter_parquet_rows
from evaluation.benchmarks.records import (
    Reject,
    format_choices_prompt,
    gold_letter,
    image_from_struct,
    letters,
)

BENCHMARK = "CV-Bench"
TASKS = ("Count", "Relation", "Depth", "Distance")
SOURCES = ("ADE20K", "COCO", "Omni3D")
REQUIRED_COLUMNS = ("idx", "task", "image", "question", "choices", "answer", "source")


def read_cvbench(root: str | Path, tasks: Iterable[str] | None = None) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of CV-Bench, optionally only the given tasks (e.g. ``["Count", "Depth"]``)."""
    root = Path(root)
    wanted = set(tasks) if tasks is not None else None
    top = sorted(p for p in root.glob("*.parquet") if p.is_file())
    files = top or find_parquet_files(root, ["data/*.parquet"], BENCHMARK, "Parquet files")
    seen: set[str] = set()
    for path in files:
        yield from _read_file(root, path, wanted, seen)


def _read_file(root: Path, path: Path, wanted: set[str] | None, seen: set[str]) -> Iterator[dict | Reject]:
    display = path.relative_to(root).as_posix()
    for row_number, rec in iter_parquet_rows(path, BENCHMARK, REQUIRED_COLUMNS):
        task = rec.get("task")
        if wanted is not None and task not in wanted:
            continue
        qid = rec.get("idx")
        qid = str(qid).strip() if qid is not None and str(qid).strip() else f"{display}#row={row_number}"
        if qid in seen:
            yield Reject(BENCHMARK, display, qid, "duplicate idx")
            continue
        seen.add(qid)
        if not isinstance(task, str) or not task:
            yield Reject(BENCHMARK, display, qid, f"task {task!r} is not a name")
            continue
        question, choices = rec.get("question"), rec.get("choices")
        if not isinstance(question, str) or not question.strip():
            yield Reject(BENCHMARK, display, qid, "question without text")
            continue
        if not isinstance(choices, list) or not 2 <= len(choices) <= 26:
            yield Reject(BENCHMARK, display, qid, f"choices {choices!r} are not a list of 2+ options")
            continue
        choices = [str(c) for c in choices]  # Count choices may be stored as numbers
        valid = letters(len(choices))
        if rec.get("answer") is None:
            yield Reject(BENCHMARK, display, qid, "question without answer")
            continue
        gold = gold_letter(rec.get("answer"), valid)
        if gold is None:
            yield Reject(BENCHMARK, display, qid, f"answer {rec.get('answer')!r} is not one of {valid}")
            continue
        source = rec.get("source")
        if not isinstance(source, str) or not source:
            yield Reject(BENCHMARK, display, qid, f"source {source!r} is not a name")
            continue
        image = image_from_struct(rec.get("image"), path.parent, "image")
        if isinstance(image, str):
            yield Reject(BENCHMARK, display, qid, image)
            continue
        prompt = rec.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            prompt = format_choices_prompt(question, choices)
        yield {
            "benchmark": BENCHMARK,
            "subset": task,
            "question_id": qid,
            "question": question,
            "prompt": prompt,
            "choices": choices,
            "valid_letters": valid,
            "gold": gold,
            "image_bytes": image,
            "image_file": f"{display}#idx={qid}/image",
            "answer_type": "letter",
            "type": rec.get("type"),
            "task": task,
            "source": source,
        }
