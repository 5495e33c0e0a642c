"""Scores per (benchmark, subset), with baselines and the paper's numbers side by side.

A prediction row is a benchmark row (see :mod:`evaluation.benchmarks.records`) plus
``pred`` (the parsed answer, ``None`` = unparsed) and, optionally, ``raw_output``. Scoring
counts an unparsed answer as wrong and reports how many there were, so accuracy is
never inflated by dropping hard cases.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from perception_tokens.paths import atomic_write_bytes

from evaluation import published
from evaluation.stats import bootstrap_accuracy_ci, bootstrap_stratified_ci


# The paper's numbers for LLaVA-1.5-13B and LLaVA-Aurora by (benchmark, subset), taken from the one
# table of published results with their sources (evaluation/published.py). A missing entry is NaN in
# the output, not 0.
_COLUMN_OF_METHOD = {published.LLAVA_13B: "LLaVA-1.5-13B", published.LLAVA_AURORA: "LLaVA-Aurora"}
PUBLISHED: dict[tuple[str, str], dict[str, float]] = {}
for _r in published.PUBLISHED_RESULTS:
    if _r.method in _COLUMN_OF_METHOD and (_r.benchmark, _r.subset) != published.AVERAGE_KEY:
        PUBLISHED.setdefault((_r.benchmark, _r.subset), {})[_COLUMN_OF_METHOD[_r.method]] = _r.accuracy_pct
PUBLISHED_MODELS = ("LLaVA-1.5-13B", "LLaVA-Aurora")

CVBENCH = "CV-Bench"
CVBENCH_OFFICIAL_SUBSET = "official"
CVBENCH_2D_SOURCES = ("ADE20K", "COCO")
CVBENCH_3D_SOURCE = "Omni3D"

SCORE_FIELDS = (
    "benchmark", "subset", "n", "n_not_run", "n_correct", "n_unparsed", "accuracy_pct", "ci_low_pct", "ci_high_pct", "chance_pct",
    "majority_pct", "paper_llava15_13b_pct", "paper_aurora_pct",
)


def is_correct(row: dict) -> bool:
    """``pred`` equals ``gold`` (both as strings); an unparsed ``None`` is wrong."""
    pred = row.get("pred")
    return pred is not None and str(pred) == str(row["gold"])


def _pct(num: float, den: float) -> float:
    return 100.0 * num / den if den else math.nan


def _chance(rows: Sequence[dict]) -> float:
    """Mean of 1/len(valid_letters) for letter answers; NaN when any answer is a number."""
    if any(r.get("answer_type") == "number" or not r.get("valid_letters") for r in rows):
        return math.nan
    return 100.0 * sum(1.0 / len(r["valid_letters"]) for r in rows) / len(rows)


def _majority(rows: Sequence[dict]) -> float:
    """Accuracy of always answering the most frequent gold answer."""
    if not rows:
        return math.nan
    return _pct(Counter(str(r["gold"]) for r in rows).most_common(1)[0][1], len(rows))


def _summary(all_rows: Sequence[dict]) -> dict[str, Any]:
    # Rows that could not be run (e.g. an oracle ablation without oracle tokens) are
    # counted apart, not scored as wrong.
    rows = [r for r in all_rows if not r.get("error")]
    n = len(rows)
    correct = sum(is_correct(r) for r in rows)
    ci_low, ci_high = bootstrap_accuracy_ci(correct, n)
    return {
        "n_not_run": len(all_rows) - n,
        "n": n,
        "n_correct": correct,
        "n_unparsed": sum(r.get("pred") is None for r in rows),
        "accuracy_pct": _pct(correct, n),
        "ci_low_pct": ci_low,
        "ci_high_pct": ci_high,
        "chance_pct": _chance(rows) if n else math.nan,
        "majority_pct": _majority(rows),
    }


def _published(benchmark: str, subset: str) -> dict[str, float]:
    paper = PUBLISHED.get((benchmark, subset), {})
    return {
        "paper_llava15_13b_pct": paper.get("LLaVA-1.5-13B", math.nan),
        "paper_aurora_pct": paper.get("LLaVA-Aurora", math.nan),
    }


def cvbench_official(acc_by_source: dict[str, float]) -> float:
    """CV-Bench's score: ½·((acc_ADE20K + acc_COCO)/2 + acc_Omni3D); NaN unless all three are known."""
    needed = (*CVBENCH_2D_SOURCES, CVBENCH_3D_SOURCE)
    if any(s not in acc_by_source or math.isnan(acc_by_source[s]) for s in needed):
        return math.nan
    acc_2d = (acc_by_source["ADE20K"] + acc_by_source["COCO"]) / 2.0
    return (acc_2d + acc_by_source[CVBENCH_3D_SOURCE]) / 2.0


def score(predictions: Iterable[dict], by: Sequence[str] = ("benchmark", "subset")) -> list[dict]:
    """One score row per group (default: per (benchmark, subset)), sorted by the group keys.

    Rows carry n, n_correct, n_unparsed, accuracy, chance (1/#letters averaged; NaN for
    numbers), majority-class baseline and the paper's numbers, all in percent. Extra
    grouping keys (e.g. ``("model", "ablation", "benchmark", "subset")``) are kept in
    the output. For CV-Bench, when ADE20K, COCO and Omni3D rows are all present, an extra
    row with subset ``"official"`` holds the official score (and the same formula applied
    to the chance and majority baselines).
    """
    if "benchmark" not in by or "subset" not in by:
        raise ValueError(f"score groups must include 'benchmark' and 'subset', got {by}")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in predictions:
        groups[tuple(str(row.get(k)) for k in by)].append(row)
    out = []
    for key in sorted(groups):
        fields = dict(zip(by, key))
        out.append({**fields, **_summary(groups[key]), **_published(fields["benchmark"], fields["subset"])})
    out.extend(_cvbench_rows(groups, by))
    return out


def _cvbench_rows(groups: dict[tuple, list[dict]], by: Sequence[str]) -> list[dict]:
    """The official CV-Bench score per group of the non-subset keys."""
    sub_i = list(by).index("subset")
    bench_i = list(by).index("benchmark")
    outer: dict[tuple, list[dict]] = defaultdict(list)
    for key, rows in groups.items():
        if key[bench_i] == CVBENCH:
            outer[key[:sub_i] + key[sub_i + 1 :]].extend(rows)
    out = []
    for okey in sorted(outer):
        rows = outer[okey]
        by_source: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_source[str(r.get("source"))].append(r)
        per = {s: _summary(rs) for s, rs in by_source.items()}
        official = cvbench_official({s: v["accuracy_pct"] for s, v in per.items()})
        if math.isnan(official):
            continue
        fields = dict(zip([k for k in by if k != "subset"], okey))
        fields["subset"] = CVBENCH_OFFICIAL_SUBSET
        summary = _summary(rows)
        summary["accuracy_pct"] = official
        # the interval of the official score: each source resampled on its own, then the formula
        order = [*CVBENCH_2D_SOURCES, CVBENCH_3D_SOURCE]
        summary["ci_low_pct"], summary["ci_high_pct"] = bootstrap_stratified_ci(
            [(per[s]["n_correct"], per[s]["n"]) for s in order], lambda a: ((a[0] + a[1]) / 2.0 + a[2]) / 2.0)
        summary["chance_pct"] = cvbench_official({s: v["chance_pct"] for s, v in per.items()})
        summary["majority_pct"] = cvbench_official({s: v["majority_pct"] for s, v in per.items()})
        row = {k: fields.get(k) for k in by}
        row.update(summary)
        row.update(_published(CVBENCH, CVBENCH_OFFICIAL_SUBSET))
        row.update({f"acc_{s}_pct": v["accuracy_pct"] for s, v in sorted(per.items())})
        out.append(row)
    return out


# ---------------------------------------------------------------------------- reports


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.1f}"
    return "" if v is None else str(v)


def scores_markdown(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A markdown table of score rows (NaN shown as —)."""
    if not rows:
        return "_no scores_\n"
    if columns is None:
        extra = [k for k in rows[0] if k not in SCORE_FIELDS and not k.startswith("acc_")]
        columns = [*extra, *SCORE_FIELDS]
    header = "| " + " | ".join(columns) + " |"
    numeric = {c for c in columns if isinstance(rows[0].get(c), (int, float))}
    sep = "| " + " | ".join("---:" if c in numeric else "---" for c in columns) + " |"
    body = ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join([header, sep, *body]) + "\n"


def plot_scores(rows: Sequence[dict], path: str | os.PathLike, title: str = "Accuracy vs. published") -> Path:
    """Bar chart PNG: our accuracy, the paper's LLaVA-1.5-13B and LLaVA-Aurora, chance as a tick.

    Written atomically; returns the path.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['benchmark']}\n{r['subset']}" for r in rows]
    series = [
        ("ours", [r["accuracy_pct"] for r in rows]),
        ("LLaVA-1.5-13B (paper)", [r.get("paper_llava15_13b_pct", math.nan) for r in rows]),
        ("LLaVA-Aurora (paper)", [r.get("paper_aurora_pct", math.nan) for r in rows]),
    ]
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(rows) + 2), 4.2))
    xs = list(range(len(rows)))
    for k, (name, values) in enumerate(series):
        vals = [0.0 if (v is None or math.isnan(v)) else v for v in values]
        ax.bar([x + (k - 1) * width for x in xs], vals, width, label=name)
    chance = [r.get("chance_pct", math.nan) for r in rows]
    for x, c in zip(xs, chance):
        if c is not None and not math.isnan(c):
            ax.hlines(c, x - 1.5 * width, x + 1.5 * width, colors="k", linestyles="dashed", linewidth=1)
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title + " (dashed: chance)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue(), fsync=False)
