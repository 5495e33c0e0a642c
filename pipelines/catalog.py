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


def query(db_path: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one query read-only; returns column names and rows."""
    if not Path(db_path).exists():
        raise FileNotFoundError(f"DuckDB catalog {db_path} does not exist yet: materialize an asset first")
    con = _connect(Path(db_path), read_only=True)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()
    finally:
        con.close()
