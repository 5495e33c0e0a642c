"""When each stage re-runs by itself: Dagster AutomationConditions for the graph's stages.

Three kinds, composed from Dagster's built-in conditions (see ``AutomationCondition.eager``,
which ``prompt`` follows) plus two small Python conditions, evaluated in the code location
(the sensor in pipelines/automation.py sets ``use_user_code_server``):

- ``prompt``: run as soon as an input updated (or the asset went missing), once every input
  is there and none is running or being requested on this same tick. The last clause is the
  project's: without it, an unpartitioned stage below a partitioned one (``marked_points``
  under ``pseudo_depth``) would run once on the new image table and again after the shard.
- ``prompt_per_shard``: ``pseudo_depth``'s version of ``prompt``. Its partitions read whole
  image tables, so for Dagster an updated ``ade20k_images`` touches every shard of every
  dataset. ``ShardInputChanged`` keeps only the partitions whose own images moved: the image
  table records a digest of (image_id, sha256) per shard (``shard_digests``), each partition
  the digest of the shard it was made from (``input_shard_digest``).
- ``nightly``: at most once per ``cron`` tick, and only when an input changed since the stage
  last ran; changes during the day wait for the next tick.
"""

from __future__ import annotations

import dagster as dg

from assets.depth import INPUT_SHARD_DIGEST
from assets.sources import SHARD_DIGESTS
from pipeline_lib.dagster_internals import automation_instance, requested_this_tick

AC = dg.AutomationCondition


class RequestedThisTick(AC):
    """True for the partitions that this evaluation has already decided to request, in any run
    (Dagster's ``will_be_requested`` counts only requests that can share the asking asset's run)."""

    @property
    def name(self) -> str:
        return "requested_this_tick"

    @property
    def description(self) -> str:
        return "Requested on this tick"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        requested = requested_this_tick(context)
        if requested is None or context.candidate_subset.is_empty:
            return dg.AutomationResult(context, context.get_empty_subset())
        return dg.AutomationResult(context, context.candidate_subset.compute_intersection(requested))


class ShardInputChanged(AC):
    """For a (dataset, shard) partition of ``pseudo_depth``: the latest ``<dataset>_images`` holds
    other images in this shard (added, removed or replaced) than the partition's latest version
    was made from. A side that recorded no digest (older materializations, another shard
    count) counts as changed: re-running a shard is cheap next to missing an image."""

    @property
    def name(self) -> str:
        return "shard_input_changed"

    @property
    def description(self) -> str:
        return "The images of this shard changed since it was last materialized"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        candidates = context.candidate_subset
        if candidates.is_empty:  # the usual case: no image table updated on this tick
            return dg.AutomationResult(context, candidates)
        instance = automation_instance(context)
        partitions_def = context.partitions_def
        num_shards = len(partitions_def.get_partitions_def_for_dimension("shard").get_partition_keys())
        table_digests: dict[str, dict[str, str]] = {}
        changed = set()
        for pk in candidates.expensively_compute_partition_keys():
            dims = partitions_def.get_partition_key_from_str(pk).keys_by_dimension
            dataset, shard = dims["dataset"], dims["shard"]
            if dataset not in table_digests:
                table_digests[dataset] = _shard_digests(instance, dg.AssetKey(f"{dataset}_images"), num_shards)
            current = table_digests[dataset].get(shard)
            consumed = _partition_metadata(instance, context.key, pk).get(INPUT_SHARD_DIGEST)
            if current is None or consumed is None or current != getattr(consumed, "value", consumed):
                changed.add(pk)
        return dg.AutomationResult(context, candidates.compute_intersection_with_partition_keys(changed))


def _shard_digests(instance: dg.DagsterInstance, key: dg.AssetKey, num_shards: int) -> dict[str, str]:
    event = instance.get_latest_materialization_event(key)
    value = event.asset_materialization.metadata.get(SHARD_DIGESTS) if event and event.asset_materialization else None
    recorded = getattr(value, "value", None) or {}
    return dict(recorded.get("by_shard", {})) if recorded.get("num_shards") == num_shards else {}


def _partition_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dict:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1).records
    materialization = records[0].asset_materialization if records else None
    return dict(materialization.metadata) if materialization else {}


def _ready() -> AC:
    """Every input is there, none is running or requested on this tick, and the asset is not running."""
    return (~AC.any_deps_missing() & ~AC.any_deps_in_progress()
            & ~AC.any_deps_match(RequestedThisTick()).with_label("any_deps_requested_this_tick") & ~AC.in_progress())


def prompt(updated: AC | None = None) -> AC:
    """``eager()``, waiting for inputs requested on the same tick; ``updated`` replaces
    ``any_deps_updated()`` as the trigger."""
    trigger = (AC.newly_missing() | (updated or AC.any_deps_updated())).since_last_handled()
    return (AC.in_latest_time_window() & trigger & _ready()).with_label("prompt")


def prompt_per_shard() -> AC:
    return prompt((AC.any_deps_updated() & ShardInputChanged()).with_label("shard_inputs_updated")).with_label("prompt_per_shard")


def nightly(cron: str, timezone: str) -> AC:
    """At the first evaluation after each ``cron`` tick, if an input changed since the asset was
    last requested; if an input is still running then, as soon as it is done. The window a tick
    opens closes as soon as there is nothing to wait for, so a change at noon waits for the
    next night."""
    inputs_changed = (AC.newly_missing() | AC.any_deps_updated()).since_last_handled()
    pending = inputs_changed | AC.any_deps_in_progress() | AC.any_deps_match(RequestedThisTick())
    window = AC.cron_tick_passed(cron, timezone).since(AC.newly_requested() | AC.newly_updated() | ~pending)
    return (window.with_label(f"after {cron} ({timezone})") & inputs_changed & _ready()).with_label(f"nightly({cron})")


def observe_on(cron: str, timezone: str) -> AC:
    """For the observable dataset roots: observe at every tick of ``cron``, unless the previous
    observation is still running (a slow listing must not pile up runs)."""
    return (AC.cron_tick_passed(cron, timezone) & ~AC.in_progress()).with_label(f"observe({cron})")
