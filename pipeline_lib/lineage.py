"""Lineage facts for one asset output: what made it, from what, with which settings."""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import dagster as dg

from pipeline_lib.dagster_internals import DATA_VERSION_TAG


def latest_data_version(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> str | None:
    """The data version of ``key`` (one partition of it) as last recorded: by a materialization,
    or for an observable source by its latest observation."""
    record = instance.get_latest_data_version_record(key, partition_key=partition)
    return (record.event_log_entry.tags or {}).get(DATA_VERSION_TAG) if record else None


def input_data_versions(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict[str, Any]:
    """Data version of every upstream asset of ``key``, as this step reads it.

    An unpartitioned input has one version. A partitioned input read partition by partition
    (pseudo_depth -> depth_tokens) has the version of this step's partition; one read whole
    (pseudo_depth -> depth_vqvae) has a ``{partition: version}`` map of all its partitions, so a
    change in any partition changes the lineage and every key derived from it.
    """
    versions: dict[str, Any] = {}
    deps = context.assets_def.asset_deps.get(key, set())
    own = context.assets_def.partitions_def
    for dep in sorted(deps, key=lambda k: k.to_user_string()):
        parts, same_partitioning = upstream_partitions(context, dep)
        if parts is None:
            versions[dep.to_user_string()] = latest_data_version(context.instance, dep, None)
        elif own is not None and context.has_partition_key and same_partitioning:
            versions[dep.to_user_string()] = latest_data_version(context.instance, dep, context.partition_key)
        else:
            versions[dep.to_user_string()] = {pk: latest_data_version(context.instance, dep, pk) for pk in parts}
    return versions


def upstream_partitions(context: dg.AssetExecutionContext, dep: dg.AssetKey) -> tuple[list[str] | None, bool]:
    """The partition keys of an upstream asset (None when it is unpartitioned), and whether
    it is partitioned as the asset that reads it (then a step reads its own partition of it).

    In a run they come from the run's asset graph, which holds every upstream asset, ephemeral
    ones too. A directly invoked asset (``asset(dg.build_asset_context(...))``, as the unit tests
    in tests/assets do) has no job and so no graph: there the instance says which partitions of
    ``dep`` it has recorded, and a parent with none recorded reads as unpartitioned.
    """
    try:
        graph = context.job_def.asset_layer.asset_graph
    except dg.DagsterError:  # DagsterInvalidPropertyError (private): invoked directly, no job
        recorded = context.instance.get_materialized_partitions(dep)
        if not recorded:
            return None, False
        return sorted(recorded), context.has_partition_key and context.partition_key in recorded
    parts = graph.get(dep).partitions_def if graph.has(dep) else None
    if parts is None:
        return None, False
    return [str(pk) for pk in parts.get_partition_keys()], parts == context.assets_def.partitions_def


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
