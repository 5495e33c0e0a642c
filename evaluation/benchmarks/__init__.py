"""Readers for the published benchmark formats (HardBLINK, BLINK, CV-Bench, Aurora's
open-ended counting sets) and a writer of small demo sets in the same formats.

The list of benchmarks is :mod:`.registry`. Every reader yields benchmark rows (plain dicts, see :mod:`.records`) or
:class:`~evaluation.benchmarks.records.Reject` records; it never crashes on one bad
record and never reads outside its root.
"""

from evaluation.benchmarks.blink import BLINK_SUBTASKS, read_blink
from evaluation.benchmarks.counting import read_blink_counting, read_counting_jsonl, read_seed_counting
from evaluation.benchmarks.cvbench import read_cvbench
from evaluation.benchmarks.hardblink import read_hardblink
from evaluation.benchmarks.records import ROW_FIELDS, Reject, split_rows
from evaluation.benchmarks.registry import BenchmarkSpec, read_benchmark, read_subsets, register

__all__ = [
    "BLINK_SUBTASKS",
    "BenchmarkSpec",
    "ROW_FIELDS",
    "Reject",
    "read_benchmark",
    "read_blink",
    "read_blink_counting",
    "read_counting_jsonl",
    "read_cvbench",
    "read_hardblink",
    "read_seed_counting",
    "read_subsets",
    "register",
    "split_rows",
]
