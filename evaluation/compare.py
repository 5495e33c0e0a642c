"""Two evaluation runs side by side: per-subset accuracy difference on the questions both
answered, and McNemar's exact test on those pairs, so a gain can be told from noise."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from evaluation.stats import mcnemar_exact

GROUP_KEYS = ("benchmark", "subset", "mode", "ablation")
COMPARE_FIELDS = (*GROUP_KEYS, "n_paired", "acc_a_pct", "acc_b_pct", "diff_pct", "only_a", "only_b", "p_value",
                  "n_only_in_a", "n_only_in_b")


def _index(preds: Iterable[dict]) -> dict[tuple, dict[str, bool]]:
    out: dict[tuple, dict[str, bool]] = defaultdict(dict)
    for p in preds:
        if p.get("error"):
            continue  # not run: nothing to compare
        out[tuple(str(p[k]) for k in GROUP_KEYS)][str(p["question_id"])] = bool(p["correct"])
    return out


def compare_runs(preds_a: Iterable[dict], preds_b: Iterable[dict], match_mode: bool = True) -> list[dict]:
    """One row per (benchmark, subset, mode, ablation) present in both runs.

    Only questions present in both runs are paired; how many were in one run only is
    reported, never silently mixed in. ``match_mode=False`` pairs by (benchmark, subset)
    alone, e.g. an answers file (mode ``external``) against a model's direct run, when
    each run has one mode and ablation per subset.
    """
    a, b = _index(preds_a), _index(preds_b)
    if not match_mode:
        a, b = _collapse(a), _collapse(b)
    rows = []
    for key in sorted(set(a) & set(b)):
        qa, qb = a[key], b[key]
        both = sorted(set(qa) & set(qb))
        test = mcnemar_exact([qa[q] for q in both], [qb[q] for q in both])
        n = len(both)
        acc_a = 100.0 * sum(qa[q] for q in both) / n if n else float("nan")
        acc_b = 100.0 * sum(qb[q] for q in both) / n if n else float("nan")
        rows.append({**dict(zip(GROUP_KEYS, key)), "n_paired": n, "acc_a_pct": acc_a, "acc_b_pct": acc_b,
                     "diff_pct": acc_b - acc_a, "only_a": test["only_a"], "only_b": test["only_b"],
                     "p_value": test["p_value"], "n_only_in_a": len(set(qa) - set(qb)), "n_only_in_b": len(set(qb) - set(qa))})
    return rows


def _collapse(index: dict[tuple, dict[str, bool]]) -> dict[tuple, dict[str, bool]]:
    out: dict[tuple, dict[str, bool]] = {}
    for (bench, subset, mode, ablation), qs in index.items():
        key = (bench, subset, "*", "*")
        if key in out:
            raise ValueError(f"{bench} {subset}: the run has more than one mode/ablation; compare with modes matched")
        out[key] = qs
    return out


def unmatched_groups(preds_a: Sequence[dict], preds_b: Sequence[dict]) -> tuple[list[tuple], list[tuple]]:
    """Groups only in run A, only in run B (to say what could not be compared)."""
    a, b = _index(preds_a), _index(preds_b)
    return sorted(set(a) - set(b)), sorted(set(b) - set(a))
