"""Processes the catalog tests run beside pytest: a DuckDB connection held open (a notebook),
and appenders started together on a barrier.

    python catalog_workers.py hold CATALOG ro|rw

prints ``ready <pid>`` once connected, holds the connection until stdin closes, then prints
the row count of ``eval_scores`` through its own (old) connection.
"""

from __future__ import annotations

import sys


def append_runs(storage_root: str, run: str, n_appends: int, rows_per_append: int, barrier) -> None:
    import pyarrow as pa

    from pipeline_lib.history import append_outside_dagster

    schema = pa.schema([("eval_run_id", pa.string()), ("i", pa.int64())])
    barrier.wait()
    for k in range(n_appends):
        rows = [{"eval_run_id": f"{run}-{k}", "i": i} for i in range(rows_per_append)]
        append_outside_dagster(storage_root, "eval_scores", schema, rows, {"source": "test"})


def refresh_one(db: str, storage_root: str, name: str, barrier) -> None:
    from pathlib import Path

    from pipeline_lib import catalog

    barrier.wait()
    catalog.refresh_view(Path(db), storage_root, name)


def hold(catalog: str, mode: str) -> None:
    import os

    import duckdb

    con = duckdb.connect(catalog, read_only=mode == "ro")
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.read()
    print(con.execute("select count(*) from eval_scores").fetchone()[0], flush=True)
    con.close()


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], sys.argv[3])
