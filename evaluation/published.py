"""The paper's published accuracies, one table: every method of its two main tables, with the source of each number.

Aurora, arXiv 2412.03548 ("Perception Tokens Enhance Visual Reasoning in Multimodal Language
Models"): the relative-depth table (BLINK 2-point, HardBLINK 3/4/5 points, average) and the
object-counting table (BLINK, CV-Bench, SEED-Bench). Numbers as transcribed in
``shared/papers/aurora-2412.03548-summary.txt`` ("Main Results"). Keys ``(benchmark, subset)``
are the names our benchmark readers give; the depth table's average column has no benchmark of
its own and is kept under ``AVERAGE_KEY``.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_DEPTH = "arXiv 2412.03548, relative depth table (Main Results)"
SOURCE_COUNT = "arXiv 2412.03548, object counting table (Main Results)"
AVERAGE_KEY = ("Relative depth", "average")  # the depth table's "Average" column

LLAVA_13B = "LLaVA 1.5 13B"
FINETUNED_LLAVA = "Fine-tuned LLaVA"
GPT_4O = "GPT-4o"
LLAVA_AURORA = "LLaVA-Aurora"
METHODS = (LLAVA_13B, FINETUNED_LLAVA, GPT_4O, LLAVA_AURORA)


@dataclass(frozen=True)
class PublishedResult:
    method: str
    benchmark: str
    subset: str
    column: str  # the column header in the paper's table
    accuracy_pct: float
    source: str


_DEPTH_COLUMNS = (("BLINK", "Relative_Depth", "BLINK 2-Point"), ("HardBLINK", "3points", "HardBLINK 3-Point"),
                  ("HardBLINK", "4points", "HardBLINK 4-Point"), ("HardBLINK", "5points", "HardBLINK 5-Point"),
                  (*AVERAGE_KEY, "Average"))
_DEPTH = {
    LLAVA_13B: (54.0, 35.5, 37.9, 29.0, 39.1),
    FINETUNED_LLAVA: (68.5, 58.9, 52.4, 41.1, 55.2),
    GPT_4O: (53.2, 58.9, 50.0, 36.3, 49.6),
    LLAVA_AURORA: (64.5, 66.9, 60.5, 54.8, 61.6),
}
_COUNT_COLUMNS = (("BLINK-Count", "count", "BLINK"), ("CV-Bench", "Count", "CVBench"), ("SEED-Count", "count", "SEED-Bench"))
_COUNT = {
    LLAVA_13B: (34.7, 43.3, 54.2),
    FINETUNED_LLAVA: (35.2, 48.5, 57.5),
    LLAVA_AURORA: (45.5, 54.6, 62.5),
}

PUBLISHED_RESULTS: tuple[PublishedResult, ...] = (
    *(PublishedResult(m, b, s, c, v, SOURCE_DEPTH) for m, vals in _DEPTH.items() for (b, s, c), v in zip(_DEPTH_COLUMNS, vals)),
    *(PublishedResult(m, b, s, c, v, SOURCE_COUNT) for m, vals in _COUNT.items() for (b, s, c), v in zip(_COUNT_COLUMNS, vals)),
)
PUBLISHED_FIELDS = ("method", "benchmark", "subset", "column", "accuracy_pct", "source")


def published_accuracy(method: str | None, benchmark: str, subset: str) -> float | None:
    """The paper's number for a method on one benchmark subset; None when the paper has none."""
    for r in PUBLISHED_RESULTS:
        if r.method == method and r.benchmark == benchmark and r.subset == subset:
            return r.accuracy_pct
    return None


def published_rows() -> list[dict]:
    """The table as rows (for Parquet, the report and ``ptok report``)."""
    return [{f: getattr(r, f) for f in PUBLISHED_FIELDS} for r in PUBLISHED_RESULTS]
