"""Say where Dagster's UI staleness stops, so nothing goes silently unchecked.

Dagster's stale resolver does not follow a dependency edge over which one partition reads
``SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD`` (100) or more upstream partitions
(dagster/_core/definitions/data_version.py). With ``datasets.num_shards`` x datasets >= 100,
``depth_vqvae`` reads that many ``pseudo_depth`` partitions: a changed shard no longer marks it
stale in the UI, nor anything downstream of it (``depth_tokens``, the curriculum, ...). The
``ptok`` runner compares the recorded per-partition input versions instead
(pipelines/staleness.py ``wide_inputs_moved``), which holds at any size; assets built under a
skipped edge say so in their metadata and in a log warning.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from pipeline_lib.dagster_internals import SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD

THRESHOLD = SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD
RUNNER_HINT = "`ptok materialize` (its runner compares every partition's recorded input version, at any size)"


def _upstream_partitions_per_partition(graph, child: dg.AssetKey, parent: dg.AssetKey) -> int:
    """How many partitions of ``parent`` one partition of ``child`` reads (all of them unless the
    two share a partitions definition, which the project maps one to one)."""
    parent_parts = graph.get(parent).partitions_def
    if parent_parts is None:
        return 1
    child_parts = graph.get(child).partitions_def
    if child_parts is not None and child_parts == parent_parts:
        return 1
    return parent_parts.get_num_partitions()


def skipped_edges(graph, key: dg.AssetKey) -> list[tuple[dg.AssetKey, dg.AssetKey, int]]:
    """(parent, child, partitions read) for every edge at or above ``key`` that Dagster's stale
    resolver skips: on ``key`` itself or on any ancestor, since a change it misses there never
    propagates down. Sorted, parent then child."""
    out, seen, frontier = set(), {key}, [key]
    while frontier:
        child = frontier.pop()
        if not graph.has(child):
            continue
        for parent in graph.get(child).parent_keys:
            if not graph.has(parent):
                continue
            n = _upstream_partitions_per_partition(graph, child, parent)
            if n >= THRESHOLD:
                out.add((parent, child, n))
            if parent not in seen:
                seen.add(parent)
                frontier.append(parent)
    return sorted(out, key=lambda e: (e[0].to_user_string(), e[1].to_user_string()))


def unchecked_staleness_note(graph, key: dg.AssetKey) -> str | None:
    """One sentence naming the skipped edges above ``key``, or None when the UI's staleness holds."""
    edges = skipped_edges(graph, key)
    if not edges:
        return None
    named = "; ".join(f"{c.to_user_string()} reads {n} partitions of {p.to_user_string()}" for p, c, n in edges)
    return (f"Dagster's UI staleness does not cover {key.to_user_string()}: {named} (Dagster skips an edge "
            f"with >= {THRESHOLD} upstream partitions), so a changed partition there is not shown as stale here. "
            f"Use {RUNNER_HINT}.")


def staleness_limit_metadata(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict[str, Any]:
    """``{"staleness_unchecked": ...}`` plus a log warning when ``key`` is under a skipped edge; {} otherwise."""
    try:
        graph = context.job_def.asset_layer.asset_graph
    except dg.DagsterError:  # invoked directly (dg.build_asset_context): no run, so no UI staleness to speak of
        return {}
    note = unchecked_staleness_note(graph, key)
    if note is None:
        return {}
    context.log.warning(note)
    return {"staleness_unchecked": dg.MetadataValue.text(note)}
