"""Which assets (and partitions) are missing or stale: the basis of "recompute only what changed".

Dagster computes staleness from code versions and input data versions; this module only
asks it. The resolver is Dagster-internal API, imported from pipeline_lib/dagster_internals.py
(the one module allowed to), and wrapped here.
"""

from __future__ import annotations

import datetime as dt

from dagster import AssetKey, DagsterInstance

from pipeline_lib.dagster_internals import (  # noqa: F401 (StaleStatus re-exported)
    SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD,
    AssetGraph,
    AssetGraphView,
    CachingStaleStatusResolver,
    StaleStatus,
    TemporalContext,
)


def stale_resolver(instance: DagsterInstance, asset_graph: AssetGraph) -> CachingStaleStatusResolver:
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=dt.datetime.now(dt.timezone.utc), last_event_id=None),
        instance=instance,
        asset_graph=asset_graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=asset_graph, loading_context=view)


def stale_keys(instance: DagsterInstance, asset_graph: AssetGraph, *, include_descendants: bool = False) -> set[AssetKey]:
    """Materializable assets (any partition) that are not FRESH.

    Dagster flags an asset whose own code version moved; its descendants turn stale only once
    it is re-materialized with different content (data versions are content hashes, so an
    unchanged result leaves them fresh). ``include_descendants`` adds them up front, which
    is what a plan of "everything this change may touch" needs.
    """
    resolver = stale_resolver(instance, asset_graph)
    out = set()
    for key in asset_graph.materializable_asset_keys:
        node = asset_graph.get(key)
        parts = node.partitions_def.get_partition_keys() if node.partitions_def else [None]
        if any(resolver.get_status(key, pk) != StaleStatus.FRESH for pk in parts):
            out.add(key)
    if include_descendants:
        frontier = list(out)
        while frontier:
            for child in asset_graph.get(frontier.pop()).child_keys:
                if child not in out and asset_graph.get(child).is_materializable:
                    out.add(child)
                    frontier.append(child)
    return out


def wide_partition_deps(asset_graph: AssetGraph, key: AssetKey) -> list[AssetKey]:
    """Partitioned parents of an unpartitioned ``key`` with so many partitions that Dagster's
    stale resolver does not look at them (``SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD``,
    100): a changed partition there would never make ``key`` stale."""
    if asset_graph.get(key).is_partitioned:
        return []
    out = []
    for parent in asset_graph.get(key).parent_keys:
        node = asset_graph.get(parent)
        if node.is_partitioned and node.partitions_def.get_num_partitions() >= SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD:
            out.append(parent)
    return sorted(out, key=lambda k: k.to_user_string())


def wide_inputs_moved(instance: DagsterInstance, asset_graph: AssetGraph, key: AssetKey, recorded: dict) -> str | None:
    """Check what Dagster skips: compare the per-partition input versions recorded in the table's
    lineage (``input_data_versions``, see pipeline_lib/lineage.py) with the instance's current ones.
    Returns why ``key`` is stale, or None when every wide input is unchanged."""
    from pipeline_lib.lineage import latest_data_version

    for dep in wide_partition_deps(asset_graph, key):
        then = recorded.get(dep.to_user_string())
        if not isinstance(then, dict):
            return f"input {dep.to_user_string()} has no per-partition versions recorded, so it cannot be checked"
        parts = asset_graph.get(dep).partitions_def.get_partition_keys()
        now = {str(pk): latest_data_version(instance, dep, str(pk)) for pk in parts}
        moved = sorted(pk for pk in set(now) | set(then) if now.get(pk) != then.get(pk))
        if moved:
            return f"{len(moved)} of {len(parts)} partitions of {dep.to_user_string()} changed (e.g. {moved[0]})"
    return None
