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
from evaluation.benchmarks.choice_records import choice_fields, take_idx
from evaluation.benchmarks.records import Reject, reject

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
        qid, duplicate = take_idx(rec, f"{display}#row={row_number}", seen)
        if duplicate:
            yield reject(BENCHMARK, display, qid, "duplicate idx")
            continue
        if not isinstance(task, str) or not task:
            yield reject(BENCHMARK, display, qid, f"task {task!r} is not a name")
            continue
        fields = choice_fields(rec, path.parent, "image", numeric_choices=True)  # Count choices may be numbers
        if isinstance(fields, str):
            yield reject(BENCHMARK, display, qid, fields)
            continue
        source = rec.get("source")
        if not isinstance(source, str) or not source:
            yield reject(BENCHMARK, display, qid, f"source {source!r} is not a name")
            continue
        yield {
            "benchmark": BENCHMARK,
            "subset": task,
            "question_id": qid,
            **fields,
            "image_file": f"{display}#idx={qid}/image",
            "type": rec.get("type"),
            "task": task,
            "source": source,
        }
