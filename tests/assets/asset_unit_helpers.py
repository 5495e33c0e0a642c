"""Helpers for the asset unit tests (tests/assets): one asset (its outputs and its checks) run on tiny inputs.

Each test builds the code location's Definitions from its own settings (storage and demo
roots under ``tmp_path``), seeds the asset's inputs as Parquet files where the IO manager
reads them, and materializes only that asset with ``dg.materialize`` on an ephemeral
instance, with the location's real resources. Assets are looked up by key in the built
Definitions, so these tests do not depend on which builder function defines an asset.

Direct invocation (``asset(dg.build_asset_context(...))``) works too
(tests/assets/test_direct_invocation.py): the asset returns its staged table uncommitted. The
tests here use ``dg.materialize`` because they also check what the IO manager commits and the
materialization metadata; asset checks, which take only their tables and resources, are
invoked directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import dagster as dg
import pyarrow as pa
from upath import UPath

from pipeline_lib.settings import Settings, settings_from_dict
from pipeline_lib.tables import TableHandle, write_table_atomic
from pipelines.definitions import build_definitions

# a world of a few images: big enough for every reader, small enough to write in a second
TINY_DEMO = {"n_ade20k": 3, "n_lvis": 2, "n_refcoco": 2, "seed": 0, "width": 96, "height": 72}


def make_settings(tmp_path: Path, **sections: Mapping[str, Any]) -> Settings:
    """Settings whose storage and demo data live under ``tmp_path``; ``sections`` override the rest."""
    raw: dict[str, Any] = {
        "storage": {"root": str(tmp_path / "storage")},
        "demo": {"root": str(tmp_path / "demo"), **TINY_DEMO},
        "datasets": {"num_shards": 1},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values} if isinstance(values, Mapping) else values  # e.g. profile="aurora"
    return settings_from_dict(raw)


def materialize_asset(settings: Settings, key: str, *, partition_key: str | dg.MultiPartitionKey | None = None,
                      raise_on_error: bool = True) -> dg.ExecuteInJobResult:
    """Run the asset that produces ``key`` (all outputs of its multi-asset, and their checks)."""
    defs = build_definitions(settings)
    assets_def = defs.get_assets_def(key)
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(*assets_def.keys),
        resources=defs.resources,
        partition_key=str(partition_key) if partition_key is not None else None,
        raise_on_error=raise_on_error,
    )


def table_path(settings: Settings, asset: str, partition: Sequence[str] = ()) -> UPath:
    """Where the IO manager keeps an asset's table: ``<root>/<asset>.parquet`` or
    ``<root>/<asset>/<dim 1>/<dim 2>.parquet`` for a partition."""
    root = UPath(settings.storage_root)
    if not partition:
        return root / f"{asset}.parquet"
    return root.joinpath(asset, *partition[:-1], f"{partition[-1]}.parquet")


def write_input(settings: Settings, asset: str, schema: pa.Schema, rows: list[dict], partition: Sequence[str] = ()) -> None:
    """Seed an upstream table the asset under test reads."""
    write_table_atomic(table_path(settings, asset, partition), pa.Table.from_pylist(rows, schema=schema))


def read_rows(settings: Settings, asset: str, partition: Sequence[str] = ()) -> list[dict]:
    return TableHandle([table_path(settings, asset, partition)]).read().to_pylist()


def materialization_metadata(result: dg.ExecuteInJobResult, key: str) -> dict[str, Any]:
    """The metadata values (unwrapped) of the run's materialization of ``key``."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    assert len(events) == 1, f"{key}: {len(events)} materializations"
    return {k: getattr(v, "value", v) for k, v in events[0].materialization.metadata.items()}


def asset_check(settings: Settings, name: str) -> dg.AssetChecksDefinition:
    """The check called ``name`` in the Definitions built from ``settings`` (to invoke directly)."""
    found = [c for c in build_definitions(settings).asset_checks if name in {k.name for k in c.check_keys}]
    assert len(found) == 1, f"{len(found)} checks named {name}"
    return found[0]


def check_results(result: dg.ExecuteInJobResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}
