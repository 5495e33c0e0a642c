"""Staleness beyond Dagster's 100-partition cutoff (issue 16.2).

Dagster's stale resolver ignores partitioned inputs with >= 100 partitions, so an unpartitioned
asset over them (depth_vqvae over many pseudo_depth shards) stayed "fresh" after one partition
changed. The runner compares the per-partition input versions recorded in the table's lineage.
"""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
from upath import UPath

from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.lineage import build_lineage
from pipelines.runner import materialize_graph
from pipelines.staleness import StaleStatus, stale_resolver, wide_partition_deps
from pipeline_lib.tables import stage_table

SHARDS = dg.StaticPartitionsDefinition([f"s{i:03d}" for i in range(120)])


def _defs(root):
    shards = dg.AssetSpec("shards", partitions_def=SHARDS)  # materialized elsewhere (reported below)

    @dg.asset(code_version="1", deps=[shards])
    def tokenizer(context) -> dg.Output:
        staged = stage_table(UPath(root) / ".staging", pa.schema([("n", pa.int64())]), pa.table({"n": [1]}),
                             build_lineage(context, context.asset_key))
        return dg.Output(staged, data_version=dg.DataVersion(staged.content_hash))

    return dg.Definitions(assets=[shards, tokenizer], resources={"io_manager": ParquetIOManagerFactory(root=str(root))})


def _report(instance, shard: str, version: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization("shards", partition=shard, tags={"dagster/data_version": version}))


def test_changed_partition_beyond_the_cutoff_makes_the_whole_reader_stale(tmp_path):
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        defs = _defs(tmp_path / "storage")
        graph = defs.resolve_asset_graph()
        assert wide_partition_deps(graph, dg.AssetKey("tokenizer")) == [dg.AssetKey("shards")]
        for shard in SHARDS.get_partition_keys():
            _report(instance, shard, "v1")
        assert [s.status for s in materialize_graph(defs, instance, "tokenizer", log=lambda m: None).steps] == ["materialized"]
        assert [s.status for s in materialize_graph(defs, instance, "tokenizer", log=lambda m: None).steps] == ["skipped (fresh)"]

        _report(instance, "s077", "v2")
        # what Dagster alone says: fresh (the input has 120 partitions, beyond its cutoff)
        assert stale_resolver(instance, graph).get_status(dg.AssetKey("tokenizer"), None) == StaleStatus.FRESH
        logs: list[str] = []
        report = materialize_graph(defs, instance, "tokenizer", log=logs.append)
        assert [s.status for s in report.steps] == ["materialized"], logs
        assert any("1 of 120 partitions of shards changed (e.g. s077)" in line for line in logs), logs
        assert [s.status for s in materialize_graph(defs, instance, "tokenizer", log=lambda m: None).steps] == ["skipped (fresh)"]
