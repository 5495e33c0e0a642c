"""DuckDB catalog: one view per asset over its Parquet files, partitions included.

The catalog is a convenience over the Parquet files, never where results live: a refresh
builds the new catalog in a temporary file beside it and renames it over the old one. A
reader (a notebook with ``read_only=True``) keeps its snapshot and takes no lock from the
writers; its next connection sees the new views. Refreshes are serialized by a lock file, so
two writers never lose each other's views, and each drops the views whose tables are gone.
Callers outside ``ptok sql`` refresh through :func:`try_refresh`, which only warns: a catalog
that cannot be refreshed never fails a run that has committed its Parquet.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import duckdb

from pipeline_lib.file_lock import exclusive
from pipeline_lib.sql_guard import READ_ONLY_STATEMENTS, ReadOnlyQueryError, check_read_only  # noqa: F401  (catalog's API)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CatalogBusy(RuntimeError):
    """Another process holds the catalog open for writing; renaming over it would mix its WAL with our file."""


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


def _view_sql(storage_root: str, asset_name: str) -> str:
    """union_by_name copes with schema growth across partitions."""
    glob = parquet_source(storage_root, asset_name).replace("'", "''")
    return (f'CREATE OR REPLACE VIEW "{view_name(asset_name)}" AS '
            f"SELECT * FROM read_parquet('{glob}', union_by_name = true, hive_partitioning = false)")


def stored_assets(storage_root: str) -> list[str] | None:
    """The assets with at least one committed Parquet file under a local root; None for object storage."""
    if "://" in str(storage_root):
        return None
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
    return sorted(names)


def writer_holding(db_path: Path) -> str | None:
    """DuckDB's own words naming the process that holds the catalog open for writing (its
    program and PID), or None when none does. A reader's shared lock does not count."""
    if not Path(db_path).exists():
        return None
    try:
        duckdb.connect(str(db_path), read_only=True).close()
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        return str(exc).strip()
    return None


def _lock_file(db_path: Path) -> Path:
    return db_path.with_name(f".{db_path.name}.lock")


def _build(db_path: Path, storage_root: str, assets: list[str] | None) -> list[str]:
    """Write the new catalog under a temporary name and rename it over the old one.

    ``assets=None``: every view from scratch. Otherwise the old catalog is the start, those
    assets' views are (re)created and, on a local root, views of tables that are gone dropped.
    """
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(_lock_file(db_path)):
        holder = writer_holding(db_path)
        if holder is not None:
            raise CatalogBusy(f"DuckDB catalog {db_path} is held open for writing by another connection ({holder}); "
                              f"views not refreshed. Open it with read_only=True; the next ptok command refreshes the views")
        stored = stored_assets(storage_root)
        tmp = Path(tempfile.mkdtemp(prefix=f".{db_path.name}.", dir=db_path.parent)) / db_path.name
        try:
            if assets is not None and db_path.exists():
                shutil.copyfile(db_path, tmp)
            con = duckdb.connect(str(tmp))
            try:
                views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
                if stored is None:  # object storage: no cheap listing, so only the named views
                    wanted = list(assets or [])
                else:  # a view over a table that no longer exists is dropped, never shown
                    for v in sorted(views - {view_name(n) for n in stored}):
                        con.execute(f'DROP VIEW "{v}"')
                    missing = {n for n in stored if view_name(n) not in views}
                    wanted = stored if assets is None else sorted((set(assets) & set(stored)) | missing)
                for name in wanted:
                    con.execute(_view_sql(storage_root, name))
            finally:
                con.close()
            os.replace(tmp, db_path)
            # a write-ahead log left by an outside writer belongs to the replaced file
            Path(f"{db_path}.wal").unlink(missing_ok=True)
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)
    return wanted


def refresh_view(db_path: Path, storage_root: str, asset_name: str) -> None:
    """(Re)create the view for one asset (and heal the others: missing ones added, gone ones dropped)."""
    _build(Path(db_path), storage_root, [asset_name])


def refresh_all(db_path: Path, storage_root: str) -> list[str]:
    """Rebuild the catalog: a view for every asset that has at least one Parquet file under the root."""
    return _build(Path(db_path), storage_root, None)


def try_refresh(db_path: Path | None, storage_root: str, asset_name: str | None = None,
                warn: Callable[[str], None] = print) -> bool:
    """Refresh the catalog after the Parquet is committed; on any failure only warn (naming the
    holder when a writer has the file), since the tables are already safe and the next refresh heals it."""
    if db_path is None:
        return False
    try:
        if asset_name is None:
            refresh_all(Path(db_path), storage_root)
        else:
            refresh_view(Path(db_path), storage_root, asset_name)
        return True
    except Exception as exc:  # the catalog is a convenience: never fail a run that has committed its tables
        what = f"view for {asset_name}" if asset_name else "views"
        warn(f"DuckDB catalog {what} not refreshed (the Parquet tables are written): {exc}")
        return False


def _sandbox(con: duckdb.DuckDBPyConnection, allowed_dirs: list[str]) -> None:
    """Confine file access to the tables' folders, then lock the settings so SQL cannot undo it.

    DuckDB only takes ``allowed_directories`` on a running database, so the order matters:
    allow the folders, turn external access off, lock the configuration.
    """
    dirs = ", ".join("'" + str(d).rstrip("/").replace("'", "''") + "/'" for d in allowed_dirs)
    con.execute(f"SET allowed_directories = [{dirs}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


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
