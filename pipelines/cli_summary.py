"""``ptok demo``'s table of stored tables: one row count per asset, read through the DuckDB catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def summary(settings, print_table: Callable, warn: Callable[[str], None], *, refresh: bool = True) -> None:
    """The row count of every stored table. ``refresh=False`` (a run that changed nothing) reads
    the catalog as the last run left it, unless it is missing."""
    from pipeline_lib import catalog

    if refresh or not Path(settings.catalog_path).exists():
        catalog.try_refresh(settings.catalog_path, settings.storage_root, warn=warn)
    names = catalog.stored_assets(settings.storage_root) or []
    counts = _row_counts(settings, names)
    if counts is None and not refresh:  # views the last run did not leave usable (storage moved, a view gone): rebuild once
        catalog.try_refresh(settings.catalog_path, settings.storage_root, warn=warn)
        counts = _row_counts(settings, names)
    rows = []
    for name in names:
        try:
            n = counts[name] if counts is not None else _count_one(settings, name)
            rows.append((name, n, f"{settings.storage_root}/{name}/"))
        except Exception as exc:  # a view over an empty folder: say so rather than hide it
            rows.append((name, f"error: {exc}", ""))
    print_table(["asset", "rows", "parquet"], rows, title="Materialized tables")
    print(f"DuckDB catalog: {settings.catalog_path}  (try: ptok sql \"select * from ade20k_images limit 5\")")


def _row_counts(settings, names: list[str]) -> dict[str, int] | None:
    """Rows of each table in one query (one catalog connection, not one per table); None when the
    query fails (a broken view), and the caller counts table by table to say which one."""
    from pipeline_lib import catalog

    if not names:
        return {}
    sql = " union all ".join(f"select {i} i, count(*) n from \"{catalog.view_name(name)}\"" for i, name in enumerate(names))
    try:
        _, rows = catalog.query(settings.catalog_path, sql, catalog.allowed_dirs_for(settings))
    except Exception:
        return None
    return {names[i]: n for i, n in rows}


def _count_one(settings, name: str) -> int:
    from pipeline_lib import catalog

    _, rows = catalog.query(settings.catalog_path, f'select count(*) from "{catalog.view_name(name)}"', catalog.allowed_dirs_for(settings))
    return rows[0][0]
