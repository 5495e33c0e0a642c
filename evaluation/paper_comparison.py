"""The paper's comparison table from this run's predictions: one row per benchmark x subset x variant.

Each variant (base model, fine-tuned on direct labels, tokens without CoT, full Aurora, ...)
contributes the questions of its headline (mode, ablation) in its latest evaluation run. A row
holds n, accuracy with its 95% Wilson interval, the paper's number for the method the variant
stands for (``evaluation/published.py``), and McNemar's exact test of the variant against
``base`` and against ``aurora`` on the questions both answered.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from evaluation.published import published_accuracy
from evaluation.stats import mcnemar_exact, wilson_ci

REFERENCE_VARIANTS = ("base", "aurora")  # every variant is paired against these two
COMPARISON_FIELDS = (
    "benchmark", "subset", "variant", "mode", "ablation", "eval_run_id", "n", "n_not_run", "n_correct", "accuracy_pct",
    "ci_low_pct", "ci_high_pct", "paper_method", "paper_pct",
    *(f"vs_{ref}_{k}" for ref in REFERENCE_VARIANTS for k in ("n_paired", "only_variant", "only_other", "p_value")),
)


def latest_run(predictions: Iterable[Mapping]) -> list[dict]:
    """The rows of the most recent evaluation run in a history (by run_started_at, then eval_run_id)."""
    rows = [dict(p) for p in predictions]
    if not rows:
        return []
    last = max((p["run_started_at"], p["eval_run_id"]) for p in rows)
    return [p for p in rows if (p["run_started_at"], p["eval_run_id"]) == last]


def _outcomes(rows: Sequence[Mapping], mode: str, ablation: str) -> tuple[dict[tuple, dict[str, bool]], dict[tuple, int], str | None]:
    """(benchmark, subset) -> {question_id: correct} for one (mode, ablation); rows not run counted apart."""
    by_subset: dict[tuple, dict[str, bool]] = {}
    not_run: dict[tuple, int] = {}
    run_id = None
    for p in rows:
        if p["mode"] != mode or p["ablation"] != ablation:
            continue
        run_id = p["eval_run_id"]
        key = (p["benchmark"], p["subset"])
        if p.get("error"):
            not_run[key] = not_run.get(key, 0) + 1
            continue
        qid = str(p["question_id"])
        if qid in by_subset.setdefault(key, {}):
            raise ValueError(f"{key[0]} {key[1]}: question {qid} answered twice in run {run_id} ({mode}, {ablation})")
        by_subset[key][qid] = bool(p["correct"])
    return by_subset, not_run, run_id


def _paired(mine: dict[str, bool], other: dict[str, bool] | None) -> dict:
    if other is None:
        return {"n_paired": None, "only_variant": None, "only_other": None, "p_value": None}
    both = sorted(set(mine) & set(other))
    test = mcnemar_exact([mine[q] for q in both], [other[q] for q in both])
    return {"n_paired": test["n"], "only_variant": test["only_a"], "only_other": test["only_b"], "p_value": test["p_value"]}


def comparison_rows(latest_by_variant: Mapping[str, Sequence[Mapping]], headline: Mapping[str, tuple[str, str]],
                    paper_method: Mapping[str, str | None]) -> list[dict]:
    """One row per (benchmark, subset) any variant answered x every variant, in the variants' order.

    ``latest_by_variant``: each variant's prediction rows of one evaluation run; ``headline``: the
    (mode, ablation) reported per variant; ``paper_method``: the paper's method per variant (or None).
    A variant paired with itself has no test (None), as has a pairing with an absent reference.
    """
    outcomes, not_run, run_ids = {}, {}, {}
    for variant, rows in latest_by_variant.items():
        outcomes[variant], not_run[variant], run_ids[variant] = _outcomes(rows, *headline[variant])
    subsets = sorted({k for v in outcomes.values() for k in v} | {k for v in not_run.values() for k in v})
    out = []
    for benchmark, subset in subsets:
        for variant in latest_by_variant:
            mine = outcomes[variant].get((benchmark, subset), {})
            n, k = len(mine), sum(mine.values())
            low, high = wilson_ci(k, n)
            method = paper_method.get(variant)
            paper = published_accuracy(method, benchmark, subset) if method else None
            row = {"benchmark": benchmark, "subset": subset, "variant": variant, "mode": headline[variant][0],
                   "ablation": headline[variant][1], "eval_run_id": run_ids[variant], "n": n,
                   "n_not_run": not_run[variant].get((benchmark, subset), 0), "n_correct": k,
                   "accuracy_pct": 100.0 * k / n if n else math.nan, "ci_low_pct": low, "ci_high_pct": high,
                   "paper_method": method, "paper_pct": math.nan if paper is None else paper}
            for ref in REFERENCE_VARIANTS:
                other = outcomes[ref].get((benchmark, subset), {}) if ref in outcomes and ref != variant else None
                row.update({f"vs_{ref}_{key}": value for key, value in _paired(mine, other).items()})
            out.append(row)
    return out


def comparison_markdown(rows: Sequence[Mapping]) -> str:
    """The table as markdown (the asset's metadata, the report)."""
    def pct(x):
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"

    def p(x):
        return "" if x is None else f"{x:.3g}"

    lines = ["| benchmark | subset | variant | run | n | acc % | 95% CI | paper method | paper % | p vs base | p vs aurora |",
             "| --- | --- | --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        ci = f"{pct(r['ci_low_pct'])}-{pct(r['ci_high_pct'])}" if r["n"] else ""
        lines.append(f"| {r['benchmark']} | {r['subset']} | {r['variant']} | {r['mode']}/{r['ablation']} | {r['n']} | "
                     f"{pct(r['accuracy_pct'])} | {ci} | {r['paper_method'] or ''} | {pct(r['paper_pct'])} | "
                     f"{p(r['vs_base_p_value'])} | {p(r['vs_aurora_p_value'])} |")
    return "\n".join(lines)
