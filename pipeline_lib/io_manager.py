"""The Parquet IO manager: ``<root>/<asset>/<partition>.parquet``, atomic, lazy to read.

Assets usually stream their rows into a staged file themselves (so the data version can
be the content hash, known only once everything is written) and hand the IO manager a
``StagedTable``; the IO manager commits it under its final name with one rename. Plain
``pyarrow.Table`` values are accepted too. Reading returns a ``TableHandle`` that streams
row groups; a partitioned upstream read by an unpartitioned asset becomes one handle over
all its partition files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster import InputContext, OutputContext, UPathIOManager
from upath import UPath

from pipeline_lib import catalog
from pipeline_lib.metadata import table_metadata
from pipeline_lib.partition_files import retired_partition_files
from pipeline_lib.tables import StagedTable, TableHandle, write_table_atomic


class ParquetIOManager(UPathIOManager):
    extension = ".parquet"

    def __init__(self, base_path: UPath, catalog_path: Path | None = None):
        super().__init__(base_path=base_path)
        self.catalog_path = catalog_path

    # ------------------------------------------------------------------ paths
    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        from pipeline_lib.dagster_internals import escape_dotdot_segments, escape_leading_slash

        return base_path / escape_dotdot_segments(escape_leading_slash(partition))

    # ------------------------------------------------------------------ writing
    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, StagedTable):
            obj.commit(path)
        elif isinstance(obj, pa.Table):
            lineage = {
                "asset_key": context.asset_key.to_user_string() if context.has_asset_key else None,
                "partition": context.partition_key if context.has_asset_partitions else None,
                "run_id": context.run_id,
                "code_version": context.version,
            }
            write_table_atomic(path, obj, lineage)
        else:
            raise TypeError(
                f"ParquetIOManager stores StagedTable or pyarrow.Table values, got {type(obj).__name__} "
                f"for {context.asset_key.to_user_string() if context.has_asset_key else context.name}"
            )
        if context.has_asset_key and context.has_asset_partitions:
            # the partitioning changed (e.g. fewer shards): older partitions' files must not stay in the views
            for retired in retired_partition_files(self._base_path, context.asset_key.path[-1], context.asset_partitions_def):
                retired.unlink()
                context.log.info(f"removed {retired}: its partition no longer exists")
        self._refresh_catalog(context)

    def _refresh_catalog(self, context: OutputContext) -> None:
        if self.catalog_path is None or not context.has_asset_key:
            return
        # the table is committed: a catalog that cannot be refreshed only warns (catalog.try_refresh)
        catalog.try_refresh(self.catalog_path, str(self._base_path), context.asset_key.path[-1], warn=context.log.warning)

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        if isinstance(obj, StagedTable):
            path = self._output_path(context)
            meta = table_metadata(TableHandle([path]))
            meta["content_hash"] = dg.MetadataValue.text(obj.content_hash)
            meta["lineage"] = dg.MetadataValue.json(json.loads(json.dumps(obj.lineage, default=str)))
            return meta
        if isinstance(obj, pa.Table):
            return table_metadata(TableHandle([self._output_path(context)]))
        return {}

    def _output_path(self, context: OutputContext) -> UPath:
        if context.has_asset_partitions:
            return next(iter(self._get_paths_for_partitions(context).values()))
        return self._get_path(context)

    # ------------------------------------------------------------------ reading
    def load_from_path(self, context: InputContext, path: UPath) -> TableHandle:
        if not path.exists():
            raise FileNotFoundError(f"{context.asset_key.to_user_string()}: no table at {path}; materialize it first")
        return TableHandle([path])

    def load_partitions(self, context: InputContext) -> TableHandle:
        paths = self._get_paths_for_partitions(context)
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
        present, missing = [], []
        for key, path in sorted(paths.items()):
            (present if path.exists() else missing).append(path)
        if missing and not allow_missing:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: {len(missing)} partition file(s) missing, e.g. {missing[0]}"
            )
        return TableHandle(present)


class ParquetIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Configuration face of ParquetIOManager: a root (local path or fsspec URL) and a catalog file."""

    root: str
    catalog_path: str | None = None

    def create_io_manager(self, context) -> ParquetIOManager:
        return ParquetIOManager(UPath(self.root), Path(self.catalog_path) if self.catalog_path else None)
