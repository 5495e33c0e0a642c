"""A tiny graph with one step in the ``accelerator`` pool, materialized by the project's runner.

    python pool_worker.py DAGSTER_HOME OUT_FILE

Used by test_run_recovery.py as a separate process, so a hang can be observed and signals sent.
"""

import sys
from pathlib import Path

import dagster as dg

from pipelines.runner import materialize_graph


@dg.asset(pool="accelerator")
def gpu_step() -> None:
    Path(sys.argv[2]).write_text("ran")


if __name__ == "__main__":
    import os

    os.environ["DAGSTER_HOME"] = sys.argv[1]
    defs = dg.Definitions(assets=[gpu_step], resources={"io_manager": dg.mem_io_manager})
    report = materialize_graph(defs, dg.DagsterInstance.get(), "*", log=lambda m: print(m, flush=True))
    print("finished", [s.status for s in report.steps], flush=True)
