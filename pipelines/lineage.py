"""Lineage facts for one asset output: what made it, from what, with which settings."""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import dagster as dg
from dagster._core.definitions.data_version import extract_data_version_from_entry


def input_data_versions(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict[str, str | None]:
    """Current data version of every upstream asset of ``key`` (latest materialization)."""
    versions: dict[str, str | None] = {}
    deps = context.assets_def.asset_deps.get(key, set())
    for dep in sorted(deps, key=lambda k: k.to_user_string()):
        record = context.instance.get_latest_data_version_record(dep)
        version = extract_data_version_from_entry(record.event_log_entry) if record else None
        versions[dep.to_user_string()] = version.value if version else None
    return versions


def build_lineage(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "asset_key": key.to_user_string(),
        "partition": context.partition_key if context.has_partition_key else None,
        "run_id": context.run_id,
        "code_version": context.assets_def.code_versions_by_key.get(key),
        "config": dict(config or {}),
        "input_data_versions": input_data_versions(context, key),
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
