"""DuckDB catalog: one view per asset over its Parquet files, partitions included.

The database file holds only views, so it is cheap to rebuild and never goes stale
against the Parquet files it points at. Writers take a short exclusive connection;
DuckDB allows one writer process, so refreshes retry briefly when another process
holds the file (parallel materializations in the multiprocess executor).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import duckdb

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def view_name(asset_name: str) -> str:
    name = asset_name.replace("/", "__").replace("-", "_")
    if not _NAME_RE.match(name):
        raise ValueError(f"asset name {asset_name!r} cannot be a DuckDB view name")
    return name


def _connect(db_path: Path, *, read_only: bool = False, attempts: int = 50) -> duckdb.DuckDBPyConnection:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return duckdb.connect(str(db_path), read_only=read_only)
        except duckdb.IOException as exc:  # lock held by another process
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"could not open DuckDB catalog {db_path}: {last}")


def parquet_source(storage_root: str, asset_name: str) -> str:
    """Every committed Parquet file of an asset: ``<root>/<asset>.parquet`` when unpartitioned,
    else ``<root>/<asset>/**/*.parquet`` (names starting with a dot, i.e. staging, excluded)."""
    root = storage_root.rstrip("/")
    single = Path(root) / f"{asset_name}.parquet"
    if "://" not in root and single.exists():
        return str(single)
    return f"{root}/{asset_name}/**/[!.]*.parquet"


def refresh_view(db_path: Path, storage_root: str, asset_name: str) -> None:
    """(Re)create the view for one asset; union_by_name copes with schema growth across partitions."""
    glob = parquet_source(storage_root, asset_name)
    sql = (
        f'CREATE OR REPLACE VIEW "{view_name(asset_name)}" AS '
        f"SELECT * FROM read_parquet('{glob}', union_by_name = true, hive_partitioning = false)"
    )
    con = _connect(db_path)
    try:
        con.execute(sql)
    finally:
        con.close()


def refresh_all(db_path: Path, storage_root: str) -> list[str]:
    """Recreate the view of every asset that has at least one Parquet file under the root."""
    root = Path(storage_root)
    names: set[str] = set()
    if root.exists():
        for entry in root.iterdir():
            if entry.name.startswith("."):
                continue
            if entry.is_file() and entry.suffix == ".parquet":
                names.add(entry.stem)
            elif entry.is_dir() and any(not p.name.startswith(".") for p in entry.rglob("*.parquet")):
                names.add(entry.name)
    for name in sorted(names):
        refresh_view(db_path, storage_root, name)
    return sorted(names)


# What a catalog query may be: reading only. DESCRIBE / SHOW / SUMMARIZE parse as SELECT.
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


class ReadOnlyQueryError(ValueError):
    """A catalog query tried to do more than read the pipeline's tables."""


def _sandbox(con: duckdb.DuckDBPyConnection, allowed_dirs: list[str]) -> None:
    """Confine file access to the tables' folders, then lock the settings so SQL cannot undo it.

    DuckDB only takes ``allowed_directories`` on a running database, so the order matters:
    allow the folders, turn external access off, lock the configuration.
    """
    dirs = ", ".join("'" + str(d).rstrip("/").replace("'", "''") + "/'" for d in allowed_dirs)
    con.execute(f"SET allowed_directories = [{dirs}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse every statement that is not a read (COPY, ATTACH, CREATE, SET, INSTALL, LOAD...):
    even inside the allowed folders, ``COPY ... TO`` could overwrite a pipeline table."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyQueryError(f"cannot parse the query: {exc}") from exc
    if not statements:
        raise ReadOnlyQueryError("empty query")
    for st in statements:
        kind = st.type.name
        if kind not in READ_ONLY_STATEMENTS:
            raise ReadOnlyQueryError(
                f"{kind} statements are not allowed: the catalog is read-only (SELECT, DESCRIBE, SHOW, SUMMARIZE, "
                f"EXPLAIN); write results with --out FILE")


def _read_only_connection(db_path: Path, allowed_dirs: list[str] | None) -> duckdb.DuckDBPyConnection:
    if not Path(db_path).exists():
        raise FileNotFoundError(f"DuckDB catalog {db_path} does not exist yet: materialize an asset first")
    if allowed_dirs is None:
        allowed_dirs = [str(Path(db_path).parent)]
    # the views name their files as written; a resolved form too in case a folder is a symlink
    allowed = sorted({str(d) for d in allowed_dirs} | {str(Path(d).resolve()) for d in allowed_dirs if "://" not in str(d)})
    con = _connect(Path(db_path), read_only=True)
    try:
        _sandbox(con, allowed)
    except Exception:
        con.close()
        raise
    return con


def allowed_dirs_for(settings) -> list[str]:
    """The folders a catalog query may read: the tables' storage root and the catalog's folder."""
    return [settings.storage_root, str(settings.catalog_path.parent)]


def query(db_path: Path, sql: str, allowed_dirs: list[str] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a read-only query; returns column names and rows.

    The connection opens the catalog read-only, may read files only under ``allowed_dirs``
    (default: the catalog's folder, where the tables live unless configured apart) and runs
    reading statements only.
    """
    con = _read_only_connection(Path(db_path), allowed_dirs)
    try:
        check_read_only(con, sql)
        cursor = con.execute(sql)
        cols = [d[0] for d in cursor.description] if cursor.description else []
        return cols, cursor.fetchall()
    finally:
        con.close()


def query_arrow(db_path: Path, sql: str, allowed_dirs: list[str] | None = None):
    """Like :func:`query`, as an Arrow table (exact types, for writing Parquet)."""
    con = _read_only_connection(Path(db_path), allowed_dirs)
    try:
        check_read_only(con, sql)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()
