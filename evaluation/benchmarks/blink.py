"""BLINK (Hugging Face release ``BLINK-Benchmark/BLINK``): one Parquet config per subtask.

Layout under ``root``: ``<Subtask>/<split>-*.parquet`` (e.g. ``Relative_Depth/val-00000-of-00001.parquet``)
with columns ``idx, question, sub_task, choices, answer ("(B)"), prompt, image_1..image_4``
(image struct ``{bytes, path}``). Only ``image_1`` is required; further images travel
in ``extra_image_bytes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from evaluation.benchmarks._parquet import find_parquet_files, iter_parquet_rows
from evaluation.benchmarks.choice_records import choice_fields, take_idx
from evaluation.benchmarks.records import MissingBenchmarkFile, Reject, image_from_struct, reject

BENCHMARK = "BLINK"
BLINK_SUBTASKS = (
    "Art_Style", "Counting", "Forensic_Detection", "Functional_Correspondence", "IQ_Test",
    "Jigsaw", "Multi-view_Reasoning", "Object_Localization", "Relative_Depth",
    "Relative_Reflectance", "Semantic_Correspondence", "Spatial_Relation",
    "Visual_Correspondence", "Visual_Similarity",
)
DEFAULT_SUBTASKS = ("Relative_Depth", "Counting")
REQUIRED_COLUMNS = ("idx", "question", "choices", "answer", "image_1")
EXTRA_IMAGE_COLUMNS = ("image_2", "image_3", "image_4")


def present_subtasks(root: str | Path, split: str = "val", candidates: Iterable[str] = BLINK_SUBTASKS) -> list[str]:
    """The ``candidates`` that have ``<Subtask>/<split>-*.parquet`` under ``root`` (a user may
    download one subtask only)."""
    root = Path(root)
    return [s for s in candidates if any(p.is_file() for p in root.glob(f"{s}/{split}-*.parquet"))]


def read_blink(
    root: str | Path, subtasks: Iterable[str] | None = None, split: str = "val"
) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of the given BLINK subtasks and split (``val`` has answers).

    ``subtasks=None`` reads those of :data:`DEFAULT_SUBTASKS` that are present and fails only
    when none is; a subtask asked for by name must be present.
    """
    root = Path(root)
    if subtasks is None:
        subtasks = present_subtasks(root, split, DEFAULT_SUBTASKS)
        if not subtasks:
            raise MissingBenchmarkFile(
                BENCHMARK, f"{split} split of any of {list(DEFAULT_SUBTASKS)} (<Subtask>/{split}-*.parquet)", root)
    for subtask in subtasks:
        _check_name(subtask)
    for subtask in subtasks:
        files = find_parquet_files(root, [f"{subtask}/{split}-*.parquet"], BENCHMARK, f"{subtask} {split} split")
        for path in files:
            yield from _read_file(root, subtask, path)


def _check_name(subtask: str) -> None:
    if "/" in subtask or "\\" in subtask or subtask in ("", ".", ".."):
        raise ValueError(f"BLINK subtask name {subtask!r} is not a plain config name")


def _read_file(root: Path, subtask: str, path: Path) -> Iterator[dict | Reject]:
    display = path.relative_to(root).as_posix()
    seen: set[str] = set()
    for row_number, rec in iter_parquet_rows(path, BENCHMARK, REQUIRED_COLUMNS):
        qid, duplicate = take_idx(rec, f"row {row_number}", seen)
        if duplicate:
            yield reject(BENCHMARK, display, qid, "duplicate idx")
            continue
        fields = choice_fields(rec, path.parent, "image_1")
        if isinstance(fields, str):
            yield reject(BENCHMARK, display, qid, fields)
            continue
        extras: list[bytes] = []
        bad_extra = None
        for col in EXTRA_IMAGE_COLUMNS:
            if rec.get(col) is None:
                continue
            extra = image_from_struct(rec[col], path.parent, col)
            if isinstance(extra, str):
                bad_extra = extra
                break
            extras.append(extra)
        if bad_extra is not None:
            yield reject(BENCHMARK, display, qid, bad_extra)
            continue
        yield {
            "benchmark": BENCHMARK,
            "subset": subtask,
            "question_id": qid,
            **fields,
            "image_file": f"{display}#idx={qid}/image_1",
            "sub_task": rec.get("sub_task"),
            "extra_image_bytes": extras,
        }
