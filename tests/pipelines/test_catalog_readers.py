"""Issue 26: a DuckDB connection held on the catalog (a notebook, the DuckDB CLI) never fails a
run or loses its results, and the views catch up by themselves. Issue 21.3: concurrent history
appends keep every row. The holders are real DuckDB connections in another process."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from catalog_workers import append_runs, refresh_one
from pipeline_lib import catalog
from pipeline_lib.io_manager import ParquetIOManager
from pipeline_lib.tables import write_table_atomic

WORKERS = Path(__file__).with_name("catalog_workers.py")
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def held(db: Path, mode: str):
    """A DuckDB connection open on ``db`` in another process until the block ends; yields
    (pid, lines) where ``lines`` gets what the holder prints after letting go."""
    proc = subprocess.Popen([sys.executable, str(WORKERS), "hold", str(db), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    after: list[str] = []
    try:
        first = proc.stdout.readline()  # waits for the connection, not for a time
        assert first.startswith("ready"), proc.stderr.read()
        yield int(first.split()[1]), after
    finally:
        out, err = proc.communicate("")
        after.extend(out.split())
        assert proc.returncode == 0, err


def views(db: Path) -> set[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    finally:
        con.close()


@pytest.fixture(scope="module")
def hardblink(tmp_path_factory):
    from evaluation.benchmarks.demo import write_demo_benchmarks
    from perception_tokens.demo.scenes import generate_scene

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("bench")
    manifest = write_demo_benchmarks(root, [generate_scene(rng, 160, 120) for _ in range(4)], seed=5)
    answers = root / "answers.jsonl"
    answers.write_text("".join(json.dumps({"question_id": int(q), "text": f"({g})"}) + "\n"
                               for (b, s, q), g in sorted(manifest.answers.items()) if b == "HardBLINK" and s == "3points"))
    return root / "hardblink", answers


@pytest.fixture()
def storage(tmp_path, monkeypatch):
    root = tmp_path / "storage"
    root.mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  root: {root}\n")
    monkeypatch.setenv("PTOK_CONFIG", str(config))
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return root


def score(hardblink) -> int:
    from pipelines import cli

    hb_root, answers = hardblink
    return cli.main(["score", "--benchmark", "hardblink", "--root", str(hb_root), "--answers", str(answers), "--subset", "3points"])


def test_score_under_a_held_reader_lands_and_shows(storage, hardblink):
    db = storage / "catalog.duckdb"
    assert score(hardblink) == 0
    assert pq.read_metadata(storage / "eval_scores.parquet").num_rows == 1
    with held(db, "ro") as (_, reader_saw):
        assert score(hardblink) == 0
        assert pq.read_metadata(storage / "eval_scores.parquet").num_rows == 2
        assert catalog.query(db, "select count(distinct eval_run_id) from eval_scores")[1] == [(2,)]
    assert reader_saw == ["2"]  # the notebook's own connection kept working and reads the new rows


def test_eval_under_a_held_reader_lands_and_shows(storage, hardblink, tmp_path):
    """``ptok eval`` used to fail with rc 2 after generating every prediction (issue 26)."""
    from pipelines import cli

    (tmp_path / "c.yaml").write_text(f"storage:\n  root: {storage}\nevaluation:\n  max_per_subset: 1\n"
                                     f"  runs: [[direct, none]]\n  max_new_tokens: 4\n")
    db = storage / "catalog.duckdb"
    write_table_atomic(UPath(storage / "eval_scores.parquet"), pa.table({"eval_run_id": ["r0"]}))
    catalog.refresh_all(db, str(storage))
    with held(db, "ro"):
        assert cli.main(["eval", "--benchmark", "hardblink", "--root", str(hardblink[0]), "--model", "tiny"]) == 0
        preds = pq.read_table(storage / "eval_predictions.parquet", columns=["model_id", "subset"]).to_pylist()
        assert sorted(p["subset"] for p in preds) == ["3points", "4points", "5points"] and {p["model_id"] for p in preds} == {"tiny"}
        assert views(db) == {"eval_scores", "eval_predictions"}
        assert catalog.query(db, "select count(*) from eval_predictions")[1] == [(3,)]


def test_score_under_a_held_writer_keeps_its_rows_and_names_the_holder(storage, hardblink, capsys):
    db = storage / "catalog.duckdb"
    assert score(hardblink) == 0
    capsys.readouterr()
    with held(db, "rw") as (pid, _):
        assert score(hardblink) == 0
        err = capsys.readouterr().err
        assert "held open for writing" in err and f"PID {pid}" in err
        assert pq.read_metadata(storage / "eval_scores.parquet").num_rows == 2
    # the writer gone, the next command heals the views
    from pipelines import cli

    assert cli.main(["sql", "select count(*) from eval_scores", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "count_star()\n2\n"


def test_materialize_under_a_held_reader_refreshes_the_views(storage):
    db = storage / "catalog.duckdb"
    write_table_atomic(UPath(storage / "eval_scores.parquet"), pa.table({"eval_run_id": ["r0"]}))
    catalog.refresh_all(db, str(storage))

    @dg.asset
    def box_tokens() -> pa.Table:
        return pa.table({"image_id": ["a", "b", "c"]})

    with held(db, "ro"):
        result = dg.materialize([box_tokens], resources={"io_manager": ParquetIOManager(UPath(storage), db)})
        assert result.success
        logs = " ".join(e.message or "" for e in result.all_events)
        assert "not refreshed" not in logs
        assert views(db) == {"eval_scores", "box_tokens"}  # the newly added asset is visible to the next connection
        assert catalog.query(db, "select count(*) from box_tokens")[1] == [(3,)]


def test_materialize_under_a_held_writer_succeeds_and_warns_naming_it(storage):
    db = storage / "catalog.duckdb"
    write_table_atomic(UPath(storage / "eval_scores.parquet"), pa.table({"eval_run_id": ["r0"]}))
    catalog.refresh_all(db, str(storage))

    @dg.asset
    def box_tokens() -> pa.Table:
        return pa.table({"image_id": ["a", "b", "c"]})

    instance = dg.DagsterInstance.ephemeral()
    with held(db, "rw") as (pid, _):
        result = dg.materialize([box_tokens], instance=instance, resources={"io_manager": ParquetIOManager(UPath(storage), db)})
        assert result.success
        assert pq.read_table(storage / "box_tokens.parquet").num_rows == 3
    warning = " ".join(e.user_message for e in instance.all_logs(result.run_id) if "not refreshed" in e.user_message)
    assert "held open for writing" in warning and f"PID {pid}" in warning
    assert catalog.try_refresh(db, str(storage)) and views(db) == {"eval_scores", "box_tokens"}  # healed once it is closed


def test_a_view_of_a_table_that_is_gone_is_dropped(storage, capsys):
    from pipelines import cli

    db = storage / "catalog.duckdb"
    for name in ("eval_scores", "old_table"):
        write_table_atomic(UPath(storage / f"{name}.parquet"), pa.table({"x": [1]}))
    catalog.refresh_all(db, str(storage))
    (storage / "old_table.parquet").unlink()
    assert cli.main(["sql", "show tables", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "name\neval_scores\n"


def test_two_catalog_writers_at_once_keep_both_views(storage):
    db = storage / "catalog.duckdb"
    names = [f"t{i}" for i in range(4)]
    for n in names:
        write_table_atomic(UPath(storage / f"{n}.parquet"), pa.table({"x": [1]}))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(names))
    procs = [ctx.Process(target=refresh_one, args=(str(db), str(storage), n, barrier)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * len(names)
    assert views(db) == set(names)


def test_concurrent_history_appends_keep_every_row(storage):
    """Four processes started together, each appending five runs of 20 rows."""
    n_procs, n_appends, n_rows = 4, 5, 20
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n_procs)
    procs = [ctx.Process(target=append_runs, args=(str(storage), f"p{i}", n_appends, n_rows, barrier)) for i in range(n_procs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * n_procs
    table = pq.read_table(storage / "eval_scores.parquet")
    runs = table.group_by("eval_run_id").aggregate([("i", "count")]).to_pylist()
    assert sorted((r["eval_run_id"], r["i_count"]) for r in runs) == sorted(
        (f"p{i}-{k}", n_rows) for i in range(n_procs) for k in range(n_appends))
