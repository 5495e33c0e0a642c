"""History tables (eval_predictions, eval_scores): every evaluation appends its rows.

The asset path streams old rows then new ones through ``emit_table``; ``ptok eval`` and
``ptok score`` append the same way outside a run and record a runless materialization,
so the history and its lineage stay in one place.

Every append reads the history, writes old rows plus new ones under a temporary name and
renames it over the table, holding the table's append lock (``fcntl``) from the read to the
rename, so concurrent graph runs, ``ptok score`` and ``ptok eval`` never drop each other's rows.
A graph run's append (:func:`locked_history`, :func:`committed`) therefore commits inside its asset, under the lock;
the IO manager then finds the table already in place (``StagedTable.committed_to``) and only
refreshes the catalog.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa
from upath import UPath

from pipeline_lib import catalog
from pipeline_lib.file_lock import exclusive
from pipeline_lib.folders import OBJECT_STORAGE_FILES, is_object_storage, previous_table, table_path
from pipeline_lib.tables import StagedTable, TableHandle, stage_table


def history_table(storage_root: str, asset: str) -> TableHandle | None:
    """The history so far (None before the first run); an unreadable one is an error, never dropped."""
    return previous_table(storage_root, asset, must_be_readable=True)


def history_rows(previous: TableHandle | None, new_rows: Iterable[dict[str, Any]], schema: pa.Schema | None = None) -> Iterator[Any]:
    """Previous rows (as record batches) followed by the new ones.

    With ``schema``, old rows written before a column was added get that column as nulls
    (e.g. eval_scores' confidence interval), so the history survives a schema change.
    """
    if previous is not None:
        for batch in previous.iter_batches():
            yield batch if schema is None else _widen(batch, schema)
    yield from new_rows


def _widen(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    names = set(batch.schema.names)
    if all(f.name in names for f in schema):
        return batch
    arrays = [batch.column(f.name) if f.name in names else pa.nulls(batch.num_rows, f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, names=schema.names)


def append_lock_file(storage_root: str, asset: str) -> Path:
    """The lock every append to ``asset`` holds; beside the tables, or under ``.ptok`` on object
    storage (there it serializes the appends of this machine only)."""
    base = OBJECT_STORAGE_FILES if is_object_storage(storage_root) else Path(storage_root)
    return base / ".locks" / f"{asset}.append.lock"


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def locked_history(storage_root: str, asset: str) -> Iterator[TableHandle | None]:
    """The history as it is now, with the table's append lock held until the block ends: a graph
    run's asset reads it, stages old + new rows and commits (:func:`committed`) inside the block."""
    with exclusive(append_lock_file(storage_root, asset)):
        yield history_table(storage_root, asset)


def committed(output, storage_root: str, asset: str):
    """``output`` (an ``emit_table`` Output of a history table) committed now, under the lock the
    caller holds; the IO manager's own commit of it is then a no-op."""
    output.value.commit(table_path(storage_root, asset))
    return output


def append_outside_dagster(storage_root: str, asset: str, schema: pa.Schema, new_rows: list[dict[str, Any]],
                           lineage: dict[str, Any], catalog_path=None, instance=None,
                           warn: Callable[[str], None] = _stderr) -> StagedTable:
    """Append rows to a history table, committed before the catalog is touched: a catalog that
    cannot be refreshed (a writer holds it) costs a warning, never the rows."""
    path = table_path(storage_root, asset)
    with exclusive(append_lock_file(storage_root, asset)):
        staged = stage_table(UPath(storage_root) / ".staging" / asset, schema,
                             history_rows(history_table(storage_root, asset), new_rows, schema), lineage)
        staged.commit(path)
    catalog.try_refresh(catalog_path, storage_root, asset, warn=warn)
    if instance is not None:
        import dagster as dg

        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=asset,
            description=f"appended {len(new_rows)} rows outside a run ({lineage.get('source', 'ptok')})",
            metadata={"path": dg.MetadataValue.path(str(path)), "appended_rows": len(new_rows),
                      "dagster/row_count": staged.num_rows, "lineage": dg.MetadataValue.json(lineage)},
            tags={"dagster/data_version": staged.content_hash},
        ))
    return staged
