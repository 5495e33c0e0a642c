"""``ptok sql`` is read-only over the catalog: every escape is first reproduced on a plain
read-only DuckDB connection (what the catalog used to open), then refused by ``catalog.query``."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from pipeline_lib import catalog
from pipeline_lib.tables import write_table_atomic


@pytest.fixture()
def world(tmp_path):
    root = tmp_path / "storage"
    write_table_atomic(UPath(root / "eval_scores.parquet"), pa.table({"subset": ["3points"], "n": [124]}))
    db = root / "catalog.duckdb"
    catalog.refresh_all(db, str(root))
    secret = tmp_path / "secret.csv"
    secret.write_text("token\n42\n")
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("create table t as select 1 as a")
    con.close()
    return root, db, secret, other


def escapes(root, secret, other, tmp_path):
    table = root / "eval_scores.parquet"
    return {
        "copy over a pipeline table": f"COPY (select 'x' as subset, 0 as n) TO '{table}' (FORMAT parquet)",
        "copy to an outside file": f"COPY eval_scores TO '{tmp_path / 'leak.csv'}'",
        "read an arbitrary file": f"select * from read_csv('{secret}')",
        "attach read-write": f"ATTACH '{other}' AS o (READ_ONLY false); INSERT INTO o.t VALUES (5)",
        "a write hidden after a select": f"select 1; COPY eval_scores TO '{tmp_path / 'leak2.csv'}'",
        "explain analyze runs the copy": f"EXPLAIN ANALYZE COPY (select 'x' as subset, 0 as n) TO '{table}' (FORMAT parquet)",
        "explain with options runs the copy": f"/* c */ explain (format json, analyze) copy eval_scores TO '{tmp_path / 'leak.csv'}'",
    }


def _raw(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_each_escape_works_on_a_plain_read_only_connection(world, tmp_path):
    """The reproduction: read_only=True alone protects nothing outside the catalog file."""
    root, db, secret, other = world
    cases = escapes(root, secret, other, tmp_path)
    assert _raw(db, cases["read an arbitrary file"]) == [(42,)]
    _raw(db, cases["copy to an outside file"])
    assert (tmp_path / "leak.csv").read_text() == "subset,n\n3points,124\n"
    _raw(db, cases["attach read-write"])
    assert duckdb.connect(str(other), read_only=True).execute("select count(*) from t").fetchall() == [(2,)]
    _raw(db, cases["copy over a pipeline table"])
    assert pq.read_table(root / "eval_scores.parquet").to_pylist() == [{"subset": "x", "n": 0}]
    (tmp_path / "leak.csv").unlink()
    _raw(db, cases["explain with options runs the copy"])
    assert (tmp_path / "leak.csv").exists()
    write_table_atomic(UPath(root / "eval_scores.parquet"), pa.table({"subset": ["3points"], "n": [124]}))
    _raw(db, cases["explain analyze runs the copy"])  # the EXPLAIN ANALYZE reproduction of issue 21.4
    assert pq.read_table(root / "eval_scores.parquet").to_pylist() == [{"subset": "x", "n": 0}]


@pytest.mark.parametrize("case", ["copy over a pipeline table", "copy to an outside file", "read an arbitrary file",
                                  "attach read-write", "a write hidden after a select", "explain analyze runs the copy",
                                  "explain with options runs the copy"])
def test_catalog_query_refuses_each_escape(world, tmp_path, case):
    root, db, secret, other = world
    sql = escapes(root, secret, other, tmp_path)[case]
    with pytest.raises((catalog.ReadOnlyQueryError, duckdb.Error)):
        catalog.query(db, sql, [str(root)])
    assert pq.read_table(root / "eval_scores.parquet").to_pylist() == [{"subset": "3points", "n": 124}]
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "leak2.csv").exists()
    assert duckdb.connect(str(other), read_only=True).execute("select count(*) from t").fetchall() == [(1,)]


def test_reads_outside_the_storage_are_refused_even_inside_a_select(world, tmp_path):
    root, db, secret, _ = world
    with pytest.raises(duckdb.PermissionException, match="secret.csv"):
        catalog.query(db, f"select * from read_csv('{secret}')", [str(root)])
    with pytest.raises(duckdb.Error):
        catalog.query(db, "select * from read_text('/etc/hostname')", [str(root)])


@pytest.mark.parametrize("sql,kind", [("SET enable_external_access = true", "SET"), ("INSTALL httpfs", "LOAD"),  # DuckDB parses INSTALL as a LOAD statement
                                      ("LOAD httpfs", "LOAD"), ("CREATE TEMP TABLE z AS SELECT 1", "CREATE"),
                                      ("DROP VIEW eval_scores", "DROP")])
def test_statements_that_change_anything_are_refused_by_name(world, sql, kind):
    root, db, _, _ = world
    with pytest.raises(catalog.ReadOnlyQueryError, match=f"{kind} statements are not allowed"):
        catalog.query(db, sql, [str(root)])


def test_reading_queries_still_work(world):
    root, db, _, _ = world
    assert catalog.query(db, "select subset, n from eval_scores", [str(root)]) == (["subset", "n"], [("3points", 124)])
    cols, rows = catalog.query(db, "describe eval_scores", [str(root)])
    assert [r[0] for r in rows] == ["subset", "n"] and cols[0] == "column_name"
    assert catalog.query(db, "show tables", [str(root)])[1] == [("eval_scores",)]
    assert catalog.query(db, "summarize eval_scores", [str(root)])[1][1][0] == "n"
    assert catalog.query_arrow(db, "select n from eval_scores", [str(root)]).to_pylist() == [{"n": 124}]


def test_explain_of_a_read_is_still_allowed(world):
    root, db, _, _ = world
    for sql in ("EXPLAIN select n from eval_scores", "explain analyze select n from eval_scores",
                "EXPLAIN (FORMAT json) select n from eval_scores"):
        assert catalog.query(db, sql, [str(root)])[1], sql


def test_several_statements_are_refused_rather_than_half_printed(world):
    root, db, _, _ = world
    with pytest.raises(catalog.ReadOnlyQueryError, match="2 statements given"):
        catalog.query(db, "select 1; select 2", [str(root)])
