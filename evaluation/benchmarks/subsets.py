"""One benchmark's subsets by name: which are present in a folder, and reading only some.

Subset names are the ``subset`` values the readers put on rows: HardBLINK ``3points`` ..
``5points``, BLINK subtask configs (``Relative_Depth``, ``Counting``, ...), CV-Bench tasks
(``Count``, ``Depth``, ...), ``count`` for the open-ended counting sets. Reading what is
present lets a user score a partial download; a subset asked for by name must be there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from evaluation.benchmarks import blink, counting, cvbench, hardblink
from evaluation.benchmarks.records import Reject

# benchmarks whose question ids restart in every subset: an answers file cannot say which subset it is for
IDS_REPEAT_ACROSS_SUBSETS = {"hardblink"}


def known_subsets(name: str) -> list[str]:
    """Every subset name a benchmark can have (present or not)."""
    if name == "hardblink":
        return [hardblink.subset_name(n) for n in hardblink.POINT_COUNTS]
    if name == "blink":
        return list(blink.BLINK_SUBTASKS)
    if name == "cvbench":
        return list(cvbench.TASKS)
    if name in ("blink_counting", "seed_counting"):
        return ["count"]
    raise ValueError(f"unknown benchmark {name!r}")


def _check_subset(name: str, subset: str) -> None:
    valid = known_subsets(name)
    if subset not in valid:
        raise ValueError(f"{name} has no subset {subset!r}; its subsets are {valid}")


def read_subsets(name: str, root: str | Path, subset: str | None = None, images: str | Path | None = None) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of ``subset`` only, or of every subset present when ``subset`` is None.

    ``images`` is the image folder of the open-ended counting sets (released without images).
    """
    root = Path(root)
    if subset is not None:
        _check_subset(name, subset)
    if name == "hardblink":
        counts = None if subset is None else [int(subset.removesuffix("points"))]
        return hardblink.read_hardblink(root, point_counts=counts)
    if name == "blink":
        subtasks = blink.present_subtasks(root) if subset is None else [subset]
        if not subtasks:
            raise blink.MissingBenchmarkFile(blink.BENCHMARK, "val split of any subtask (<Subtask>/val-*.parquet)", root)
        return blink.read_blink(root, subtasks=subtasks)
    if name == "cvbench":
        return cvbench.read_cvbench(root, tasks=None if subset is None else [subset])
    if name == "blink_counting":
        return counting.read_blink_counting(root, images=images)
    if name == "seed_counting":
        return counting.read_seed_counting(root, images=images)
    raise ValueError(f"unknown benchmark {name!r}")
