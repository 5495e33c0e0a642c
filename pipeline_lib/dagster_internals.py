"""Every private Dagster name this project uses, in one place.

"Skip what is fresh" (pipelines/runner.py, pipelines/staleness.py) asks Dagster's own stale
resolver, and the IO manager escapes partition keys the way Dagster's UPathIOManager does.
Dagster 1.13 exports none of these at top level, so they come from ``dagster._core`` and may
change in any release. Nothing else in the project may import ``dagster._``
(tests/pipelines/test_dagster_internals.py scans for it), and that test checks the signatures
and attributes used here, so a Dagster upgrade that moves them fails there with the name to fix.

Each name, why it is needed and what public API would replace it:

- ``observe``: runs the observation of observable source assets (dataset roots) in process,
  as ``dg.materialize`` does for assets. Public replacement: a top-level ``dg.observe``
  (not exported in 1.13), or launching an observation job through the instance.
- ``AssetGraph``: the type of ``Definitions.resolve_asset_graph()`` (public method, private
  type); used for annotations and by the resolver below. Replacement: a public export.
- ``CachingStaleStatusResolver``, ``StaleStatus``: the resolver behind the UI's
  "Stale"/"Fresh" badges: compares recorded code and input data versions with the current
  ones per asset and partition. Replacement: none public; the GraphQL API exposes the same
  status (``staleStatus``) but needs a running webserver.
- ``AssetGraphView``, ``TemporalContext``: the loading context the resolver requires
  (a view of the instance at "now"). Replacement: none; they go with the resolver.
- ``SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD``: the partition count (100) from which
  the resolver ignores a partitioned parent; the runner checks those parents itself
  (pipelines/staleness.py ``wide_partition_deps``). Replacement: none; a documented limit.
- ``DATA_VERSION_TAG``: the tag under which a materialization or observation records its
  data version. Dagster documents the tag value (``dagster/data_version``); its constant is
  private. pipeline_lib/lineage.py reads it from the public ``EventLogEntry`` records.
- ``AutomationContext.request_subsets_by_key``, ``AutomationContext.asset_graph_view.instance``
  (attributes, not imports): what the running automation evaluation has requested so far, and
  its instance, for the project's Python automation conditions (pipelines/automation_conditions.py).
  Dagster's own conditions read them; the context documents neither. Replacement: public
  accessors on ``AutomationContext`` (1.13 has ``candidate_subset``, ``key``, ``evaluation_time``).
- ``escape_dotdot_segments``, ``escape_leading_slash``: how UPathIOManager turns a partition
  key into a path segment that cannot escape the asset's folder; the project's IO manager
  overrides ``make_safe_partition_path`` and must escape the same way. Replacement: none.
"""

from __future__ import annotations

from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.data_version import (
    DATA_VERSION_TAG,
    SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD,
    CachingStaleStatusResolver,
    StaleStatus,
)
from dagster._core.definitions.observe import observe
from dagster._core.definitions.temporal_context import TemporalContext
from dagster._core.storage.upath_io_manager import escape_dotdot_segments, escape_leading_slash


def requested_this_tick(context):
    """The subset of ``context.key`` this automation evaluation has already requested, or None."""
    return context.request_subsets_by_key.get(context.key)


def automation_instance(context):
    """The DagsterInstance an automation evaluation reads."""
    return context.asset_graph_view.instance


__all__ = [
    "AssetGraph",
    "AssetGraphView",
    "CachingStaleStatusResolver",
    "DATA_VERSION_TAG",
    "SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD",
    "StaleStatus",
    "TemporalContext",
    "automation_instance",
    "escape_dotdot_segments",
    "escape_leading_slash",
    "observe",
    "requested_this_tick",
]
