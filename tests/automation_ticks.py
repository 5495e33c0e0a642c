"""Successive declarative-automation evaluations on one instance, as the sensor's ticks would be
(tests/pipelines/test_automation.py, tests/e2e/test_automation_e2e.py)."""

from __future__ import annotations

import datetime as dt

import dagster as dg


class Ticks:
    """``at(when)`` evaluates every automation condition at ``when`` (carrying the cursor from the
    previous tick) and returns what it requested: ``"asset"`` or ``"asset[partition]"``."""

    def __init__(self, defs: dg.Definitions | list, instance: dg.DagsterInstance):
        self.defs, self.instance, self.cursor = defs, instance, None

    def at(self, when: dt.datetime) -> set[str]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, evaluation_time=when,
                                                   cursor=self.cursor)
        self.cursor = result.cursor
        out = set()
        for r in result.results:
            if r.true_subset.is_empty:
                continue
            name = r.key.to_user_string()
            parts = r.true_subset.expensively_compute_partition_keys() if r.true_subset.is_partitioned else {None}
            out |= {name if pk is None else f"{name}[{pk}]" for pk in parts}
        return out
