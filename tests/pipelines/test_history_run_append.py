"""A graph run's history append and a concurrent ``ptok score`` / ``ptok eval`` append keep each other's rows.

The race: the run's asset stages old + new rows; before its table is committed another process
appends (``append_outside_dagster``) and renames its table in; the run's commit then renamed the
stale staged file over it and the other process's rows were gone. Now the run reads and commits
under the table's append lock (``locked_history`` / ``committed``), so the other append waits for
the lock and lands on top.
"""

import fcntl
import os
import threading

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from pipeline_lib import tables
from pipeline_lib.emit import emit_table
from pipeline_lib.history import append_lock_file, append_outside_dagster, committed, history_rows, locked_history
from pipeline_lib.io_manager import ParquetIOManager
from pipeline_lib.resources import StorageResource

SCHEMA = pa.schema([("run", pa.string())])


def _lock_is_free(lock_path) -> bool:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_an_append_racing_a_graph_runs_commit_keeps_both_rows(tmp_path, monkeypatch):
    storage = tmp_path / "storage"
    storage.mkdir()
    append_outside_dagster(str(storage), "history", SCHEMA, [{"run": "first"}], {"source": "test"})
    lock_path = append_lock_file(str(storage), "history")
    racer: list[threading.Thread] = []
    real_commit = tables.StagedTable.commit

    def commit_with_a_racing_append(self, final_path):
        # the moment between a run's staging and its rename: another process appends now
        if final_path.name == "history.parquet" and not racer:
            def other_process_append():
                append_outside_dagster(str(storage), "history", SCHEMA, [{"run": "ptok score"}], {"source": "racer"})

            thread = threading.Thread(target=other_process_append)
            racer.append(thread)
            if _lock_is_free(lock_path):  # nothing serializes the two: the other append completes first
                thread.start()
                thread.join()
            else:  # the run holds the lock: the other append waits for it and lands after the commit
                thread.start()
        return real_commit(self, final_path)

    monkeypatch.setattr(tables.StagedTable, "commit", commit_with_a_racing_append)

    @dg.asset(name="history")
    def history(context: dg.AssetExecutionContext, storage: StorageResource):
        with locked_history(storage.root, "history") as previous:
            out = emit_table(context, storage, SCHEMA, history_rows(previous, [{"run": "graph run"}], SCHEMA))
            return committed(out, storage.root, "history")

    result = dg.materialize([history], resources={"storage": StorageResource(root=str(storage)),
                                                  "io_manager": ParquetIOManager(UPath(storage))})
    assert result.success
    assert len(racer) == 1
    racer[0].join()
    runs = pq.read_table(storage / "history.parquet").column("run").to_pylist()
    assert sorted(runs) == ["first", "graph run", "ptok score"]
    assert runs[:2] == ["first", "graph run"]  # the other append waited for the run's commit


def test_a_staged_table_commits_once_and_refuses_a_second_destination(tmp_path):
    staged = tables.stage_table(UPath(tmp_path / ".staging"), SCHEMA, [{"run": "a"}], {})
    first = UPath(tmp_path / "t.parquet")
    staged.commit(first)
    staged.commit(first)  # the IO manager's commit after the asset's: a no-op
    assert pq.read_table(tmp_path / "t.parquet").column("run").to_pylist() == ["a"]
    with pytest.raises(ValueError, match="already committed"):
        staged.commit(UPath(tmp_path / "elsewhere.parquet"))
