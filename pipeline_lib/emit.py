"""The one way an asset hands a table to storage: stream rows to a staged file, hash, Output.

Assets call ``emit_table``; it writes under a temporary name in the asset's folder, so the
data version (a hash of the content) is known before Dagster records the materialization,
and the IO manager then commits the file with one rename.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

import dagster as dg
import pyarrow as pa

from perception_tokens.schemas import REJECT_SCHEMA
from pipeline_lib.lineage import build_lineage
from pipeline_lib.resources import StorageResource
from pipeline_lib.staleness_limit import staleness_limit_metadata
from pipeline_lib.tables import stage_table


def emit_table(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    schema: pa.Schema,
    rows: Iterable[Mapping[str, Any]] | Iterable[pa.RecordBatch] | pa.Table,
    *,
    output_name: str | None = None,
    config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dg.Output:
    # from the assets definition rather than the run's job, so a directly invoked asset emits too
    key = context.assets_def.keys_by_output_name[output_name] if output_name else context.asset_key
    lineage = build_lineage(context, key, config)
    staged = stage_table(storage.staging_dir(key.path[-1]), schema, rows, lineage, batch_rows=storage.row_group_rows)
    context.log.info(f"{key.to_user_string()}: {staged.num_rows} rows staged (content {staged.content_hash})")
    return dg.Output(
        staged,
        output_name=output_name or "result",
        data_version=dg.DataVersion(staged.content_hash),
        metadata={**dict(metadata or {}), **staleness_limit_metadata(context, key)},  # where the UI's staleness stops
    )


class RejectSink:
    """Collects reject records while a reader streams; rows pass through untouched."""

    def __init__(self) -> None:
        self.rejects: list[dict[str, Any]] = []

    def rows(self, items: Iterable[Any]) -> Iterator[dict[str, Any]]:
        for item in items:
            if isinstance(item, dict):
                yield item
            else:
                self.rejects.append(item.as_row())

    def emit(self, context: dg.AssetExecutionContext, storage: StorageResource, output_name: str) -> dg.Output:
        reasons: dict[str, int] = {}
        for r in self.rejects:
            reasons[r["reason"].split(":")[0]] = reasons.get(r["reason"].split(":")[0], 0) + 1
        for r in self.rejects[:20]:
            context.log.warning(f"reject {r['stage']} {r['file']} ({r['record_id']}): {r['reason']}")
        return emit_table(
            context,
            storage,
            REJECT_SCHEMA,
            self.rejects,
            output_name=output_name,
            metadata={"reasons": dg.MetadataValue.json(reasons)},
        )
