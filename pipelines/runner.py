"""Materialize a selection of the graph outside the web UI, recomputing only what needs it.

Used by ``ptok demo`` / ``ptok materialize`` and the end-to-end tests. Each asset (and each
partition) runs as its own in-process run against a persistent instance, so the web UI
shows the same runs, and anything FRESH (same code versions, same input data versions)
is skipped.
"""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Sequence

import dagster as dg
from dagster import AssetKey, DagsterInstance

from upath import UPath

from assets.curriculum_export import curriculum_export_problem
from assets.sources import current_root_version
from pipeline_lib import catalog
from pipeline_lib.dagster_internals import observe  # not re-exported at top level in 1.13
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.partition_files import remove_retired_partitions, table_file, unreadable_reason
from pipeline_lib.run_tags import FORCE_TAG
from pipelines.run_recovery import process_tags, reap_dead_runs, wait_for_pool_slot
from pipelines.staleness import StaleStatus, stale_resolver, wide_inputs_moved, wide_partition_deps
from pipeline_lib.tables import read_lineage


@dataclass
class StepReport:
    asset: str
    partition: str | None
    status: str  # "materialized" | "skipped (fresh)" | "failed"
    seconds: float
    error: str | None = None


@dataclass
class CheckReport:
    """An asset check that ran and did not pass."""

    check: str  # "<asset>:<check name>"
    partition: str | None
    severity: str  # "ERROR" | "WARN" (Dagster's AssetCheckSeverity)
    detail: str  # the check's description and its metadata


@dataclass
class RunReport:
    steps: list[StepReport] = field(default_factory=list)
    failed_checks: list[CheckReport] = field(default_factory=list)

    @property
    def failed(self) -> list[StepReport]:
        return [s for s in self.steps if s.status == "failed" or s.status == "skipped (upstream failed)"]

    @property
    def error_checks(self) -> list[CheckReport]:
        """Failed checks of ERROR severity: the run's output is not to be trusted (the CLI exits 1)."""
        return [c for c in self.failed_checks if c.severity == "ERROR"]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def _assets_in_order(defs: dg.Definitions, keys: set[AssetKey]) -> list[dg.AssetsDefinition]:
    graph = defs.resolve_asset_graph()
    order = graph.toposorted_asset_keys
    seen: list[dg.AssetsDefinition] = []
    for key in order:
        if key not in keys:
            continue
        ad = graph.assets_def_for_key(key)
        if ad not in seen:
            seen.append(ad)
    return seen


def materialize_graph(
    defs: dg.Definitions,
    instance: DagsterInstance,
    selection: str | Sequence[str] | dg.AssetSelection = "*",
    *,
    force: bool = False,
    log: Callable[[str], None] = print,
    raise_on_failure: bool = False,
    console_log_level: str = "INFO",
) -> RunReport:
    graph = defs.resolve_asset_graph()
    if isinstance(selection, dg.AssetSelection):
        sel = selection
    else:
        sel = dg.AssetSelection.from_coercible(selection) if not isinstance(selection, str) else dg.AssetSelection.from_string(selection)
    keys = {k for k in sel.resolve(graph) if graph.get(k).is_materializable}
    all_assets = list(defs.assets or [])
    all_checks = list(defs.asset_checks or [])
    report = RunReport()
    failed: set[AssetKey] = set()
    reap_dead_runs(instance, log=log)  # a run killed earlier must not hold its pool slot forever
    # changed dataset files make their sources stale; a root that could not be observed leaves
    # the old version in place, so what reads it fails here rather than being skipped as fresh
    for source, err in observe_sources(defs, instance, keys, log=log).items():
        failed.add(source)
        report.steps.append(StepReport(source.to_user_string(), None, "failed", 0.0, err))
    store = _parquet_store(defs)
    if store is not None:  # partitions that no longer exist (fewer shards) must not stay readable
        for name in remove_retired_partitions(UPath(store.root), all_assets, log=log):
            if store.catalog_path:  # warns only: a held catalog must not stop the run
                catalog.try_refresh(Path(store.catalog_path), store.root, name, warn=log)
    resolver, ran = None, False
    for ad in _assets_in_order(defs, keys):
        upstream = {dep for k in ad.keys for dep in graph.get(k).parent_keys}
        if upstream & failed:
            failed.update(ad.keys)
            label = "/".join(min(ad.keys, key=lambda k: len(k.to_user_string())).path)
            report.steps.append(StepReport(label, None, "skipped (upstream failed)", 0.0))
            log(f"  - {label:45s} skipped: an upstream asset failed")
            continue
        # name a step after its main asset, not its _rejects sibling
        ad_keys = sorted([k for k in ad.keys if k in keys] or list(ad.keys), key=lambda k: len(k.to_user_string()))
        partitions = ad.partitions_def.get_partition_keys() if ad.partitions_def else [None]
        # the resolver caches instance reads: it is kept while nothing runs (a no-op run reads each
        # record once) and replaced after an asset that ran; runs of this asset's own partitions
        # do not change the status of its other partitions
        if resolver is None or ran:
            resolver, ran = stale_resolver(instance, graph), False
        for pk in partitions:
            label = "/".join(ad_keys[0].path) + (f"[{pk}]" if pk else "")
            fresh = not force and all(resolver.get_status(k, pk) == StaleStatus.FRESH for k in ad.keys)
            why = _stale_beyond_dagster(store, instance, graph, ad, ad_keys[0], pk) if fresh else None
            if why:
                fresh = False
                log(f"  ~ {label:45s} recorded fresh but {why}: rebuilding")
            if fresh:
                report.steps.append(StepReport(label, pk, "skipped (fresh)", 0.0))
                log(f"  = {label:45s} fresh, skipped")
                continue
            start = time.perf_counter()
            # wait here, not inside Dagster, where a waiting step ignores SIGINT/SIGTERM
            wait_for_pool_slot(instance, _pool_of(ad), log=log)
            ran = True
            result = dg.materialize(
                [*all_assets, *all_checks],
                selection=dg.AssetSelection.assets(*ad.keys),
                instance=instance,
                resources=defs.resources,
                partition_key=pk,
                raise_on_error=False,
                # --force reaches the asset too: one that reuses earlier work (a finished training
                # run's state) recomputes it (pipeline_lib/run_tags.py)
                tags={"ptok/launched_by": "ptok", **process_tags(), **({FORCE_TAG: "true"} if force else {})},
                # the console shows the stage's own messages; Dagster's step events stay in the instance (UI)
                run_config={"loggers": {"console": {"config": {"log_level": console_log_level}}}},
            )
            seconds = time.perf_counter() - start
            for check in _failed_checks(result, pk):
                report.failed_checks.append(check)
                log(f"  ! {check.check:45s} check FAILED ({check.severity}): {check.detail}")
            if result.success:
                report.steps.append(StepReport(label, pk, "materialized", seconds))
                log(f"  + {label:45s} {seconds:7.1f} s")
            else:
                err = _first_error(result)
                report.steps.append(StepReport(label, pk, "failed", seconds, err))
                failed.update(ad.keys)
                log(f"  ! {label:45s} FAILED: {err}")
                if raise_on_failure:
                    raise RuntimeError(f"{label} failed: {err}")
    return report


def observe_sources(defs: dg.Definitions, instance: DagsterInstance, keys: set[AssetKey],
                    log: Callable[[str], None] = print) -> dict[AssetKey, str]:
    """Observe the observable source assets upstream of ``keys`` (dataset roots), so staleness
    below sees the current fingerprint of the files, not the one of the last run. Returns the
    sources whose observation failed, with the error (empty when all were observed)."""
    graph = defs.resolve_asset_graph()
    ancestors, frontier = set(), list(keys)
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent not in ancestors:
                ancestors.add(parent)
                frontier.append(parent)
    wanted = {k for k in ancestors | keys if graph.has(k) and graph.get(k).is_observable}
    sources = [a for a in (defs.assets or []) if getattr(a, "is_observable", False) and set(_keys_of(a)) & wanted]
    # a root whose fingerprint is the version already recorded has nothing to report: no observation run
    resolver = stale_resolver(instance, graph)
    sources = [a for a in sources if not _root_unchanged(defs, resolver, a, log)]
    if not sources:
        return {}
    start = time.perf_counter()
    result = observe(sources, instance=instance, resources=defs.resources, raise_on_error=False,
                        tags={"ptok/launched_by": "ptok", **process_tags()})
    for event in result.get_asset_observation_events():
        obs = event.asset_observation_data.asset_observation
        facts = ", ".join(f"{obs.metadata[k].value} {k}" for k in ("files", "hashed", "removed", "not_read") if k in obs.metadata)
        version = obs.tags.get("dagster/data_version", "?")
        log(f"  o {obs.asset_key.to_user_string():45s} version {version[:12]} {facts} ({time.perf_counter() - start:.1f} s)")
    if result.success:
        return {}
    err = _first_error(result)
    failed_ops = {e.step_key for e in result.all_events if e.is_step_failure}
    # a resource that failed to start fails every observation; otherwise only the failed ops' sources
    culprits = [a for a in sources if a.node_def.name in failed_ops] or sources
    failures = {k: f"observing the dataset root failed: {err}" for a in culprits for k in _keys_of(a) if k in wanted}
    for key in failures:
        log(f"  ! {key.to_user_string():45s} FAILED to observe: {err}")
    return failures


def _root_unchanged(defs: dg.Definitions, resolver, source, log: Callable[[str], None]) -> bool:
    """True when every root ``source`` observes has the fingerprint its latest observation recorded
    (computed the same way, without recording anything). Anything else (no observation yet, a
    moved root, a source that is not a dataset root, a fingerprint that fails) means: observe it,
    and let the observation report what moved or what failed."""
    resources = defs.resources or {}
    datasets, storage = resources.get("datasets"), resources.get("storage")
    if datasets is None or storage is None:
        return False
    for key in _keys_of(source):
        try:
            now = current_root_version(key.to_user_string(), datasets, storage)
        except OSError:
            return False
        recorded = resolver.get_current_data_version(key)
        if now is None or recorded is None or recorded.value != now:
            return False
    for key in _keys_of(source):
        log(f"  o {key.to_user_string():45s} version {resolver.get_current_data_version(key).value[:12]} unchanged, not re-observed")
    return True


def _keys_of(a) -> list[AssetKey]:
    return list(a.keys) if hasattr(a, "keys") else [a.key]


# Files an asset writes beside its table, which Dagster does not see: while they are incomplete
# the asset is not fresh. Each takes the storage root and the asset's name (an experiment's
# per-variant assets are "<base>__<variant>") and says what is wrong, or None.
FILES_BESIDE_TABLE: dict[str, Callable[[str, str], str | None]] = {"curriculum": curriculum_export_problem}


def files_beside_table(asset_name: str) -> Callable[[str], str | None] | None:
    """The check of the files ``asset_name`` writes beside its table (its base asset's, for a variant)."""
    check = FILES_BESIDE_TABLE.get(asset_name.split("__", 1)[0])
    return None if check is None else (lambda root: check(root, asset_name))


def _stale_beyond_dagster(store: ParquetIOManagerFactory | None, instance: DagsterInstance, graph, ad: dg.AssetsDefinition,
                          main_key: AssetKey, pk: str | None) -> str | None:
    """Why a step Dagster calls fresh must run anyway, or None. Dagster trusts its records: a table
    deleted or broken by hand is not fresh, nor is the curriculum while its LLaVA export is
    incomplete (``FILES_BESIDE_TABLE``); and it skips inputs with >= 100 partitions, so those
    are compared with the input versions the table's lineage recorded."""
    if store is None:
        return None
    root = UPath(store.root)
    problems = [f"table {k.path[-1]} {why}" for k in ad.keys
                if (why := unreadable_reason(table_file(root, k.path[-1], ad.partitions_def, pk)))]
    if problems:
        return ", ".join(problems)
    beside = files_beside_table(main_key.path[-1])
    if pk is None and beside is not None and (why := beside(store.root)):
        return why
    if pk is None and wide_partition_deps(graph, main_key):
        recorded = read_lineage(table_file(root, main_key.path[-1], None, None)).get("input_data_versions", {})
        return wide_inputs_moved(instance, graph, main_key, recorded)
    return None


def _parquet_store(defs: dg.Definitions) -> ParquetIOManagerFactory | None:
    io = (defs.resources or {}).get("io_manager")
    return io if isinstance(io, ParquetIOManagerFactory) else None


def _pool_of(ad: dg.AssetsDefinition) -> str | None:
    pools = {node.pool for node in ad.node_def.iterate_node_defs() if getattr(node, "pool", None)}
    return next(iter(pools), None)


def _failed_checks(result: dg.ExecuteInProcessResult, partition: str | None) -> list[CheckReport]:
    failed = []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        facts = ", ".join(f"{k} {v.value}" for k, v in evaluation.metadata.items())
        detail = "; ".join(part for part in (evaluation.description, facts) if part)
        failed.append(CheckReport(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}", partition,
                                  evaluation.severity.value, detail[:300]))
    return failed


def _first_error(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        # a step that raised, or a resource that refused to start (e.g. config edited past its settings)
        err = getattr(event.event_specific_data, "error", None) if (
            event.is_step_failure or event.is_resource_init_failure) else None
        if err is not None:
            while err.cause is not None:  # Dagster wraps user errors; the innermost says what broke
                err = err.cause
            return f"{event.step_key}: {err.message.strip().splitlines()[0][:300]}"
    return "unknown error (see the run's logs in the UI)"
