"""Tables deleted by hand are rebuilt; partitions that no longer exist leave no rows behind.

Reproduce issue 12.4 (``rm box_tokens.parquet; ptok demo`` reported everything fresh) and
12.5 (``num_shards`` 3 -> 2 left the third shard's files, and the views counted rows twice).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from upath import UPath

from pipeline_lib import catalog
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.partition_files import retired_partition_files, table_file, unreadable_reason
from pipelines.runner import materialize_graph

IMAGES = [f"img{i}" for i in range(12)]


def _defs(root: Path, num_shards: int) -> dg.Definitions:
    parts = dg.MultiPartitionsDefinition({"dataset": dg.StaticPartitionsDefinition(["a", "b"]),
                                          "shard": dg.StaticPartitionsDefinition([str(i) for i in range(num_shards)])})

    @dg.asset(code_version="1")
    def images() -> pa.Table:
        return pa.table({"image_id": IMAGES})

    @dg.asset(code_version=f"1+{num_shards}", partitions_def=parts)
    def per_shard(context, images) -> pa.Table:
        k = context.partition_key.keys_by_dimension
        ids = [i for n, i in enumerate(IMAGES) if n % num_shards == int(k["shard"])]
        return pa.table({"dataset": [k["dataset"]] * len(ids), "image_id": ids})

    @dg.asset(code_version="1", deps=[images])
    def summary() -> pa.Table:
        return pa.table({"n": [len(IMAGES)]})

    return dg.Definitions(
        assets=[images, per_shard, summary],
        resources={"io_manager": ParquetIOManagerFactory(root=str(root / "storage"), catalog_path=str(root / "catalog.duckdb"))},
    )




@pytest.fixture
def instance(tmp_path):
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as inst:
        yield inst


def _statuses(report) -> dict[str, str]:
    return {s.asset: s.status for s in report.steps}


def test_table_deleted_or_corrupted_by_hand_is_rebuilt_and_only_it(tmp_path, instance):
    defs = _defs(tmp_path, 2)
    assert not materialize_graph(defs, instance, "*", log=lambda m: None).failed
    root = tmp_path / "storage"
    (root / "summary.parquet").unlink()
    (root / "per_shard" / "b" / "1.parquet").write_bytes(b"not parquet at all")
    logs: list[str] = []
    report = materialize_graph(defs, instance, "*", log=logs.append)
    done = [s.asset for s in report.steps if s.status == "materialized"]
    assert sorted(done) == ["per_shard[b|1]", "summary"], logs
    assert unreadable_reason(UPath(root / "summary.parquet")) is None
    assert unreadable_reason(UPath(root / "per_shard" / "b" / "1.parquet")) is None
    assert any("summary" in line and "missing" in line for line in logs)
    assert any("per_shard[b|1]" in line and "unreadable" in line for line in logs)
    # and a third run has nothing left to do
    assert all(s.status == "skipped (fresh)" for s in materialize_graph(defs, instance, "*", log=lambda m: None).steps)


def test_fewer_shards_remove_the_retired_partitions_from_disk_and_views(tmp_path, instance):
    assert not materialize_graph(_defs(tmp_path, 3), instance, "*", log=lambda m: None).failed
    db = tmp_path / "catalog.duckdb"
    assert catalog.query(db, "select count(*) from per_shard")[1][0][0] == 2 * len(IMAGES)
    root = UPath(tmp_path / "storage")
    two = _defs(tmp_path, 2)
    parts = two.resolve_assets_def("per_shard").partitions_def
    assert sorted(p.name for p in retired_partition_files(root, "per_shard", parts)) == ["2.parquet", "2.parquet"]
    report = materialize_graph(two, instance, "*", log=lambda m: None)
    assert not report.failed
    assert retired_partition_files(root, "per_shard", parts) == []
    cols, rows = catalog.query(db, "select count(*), count(distinct dataset || image_id) from per_shard")
    assert rows[0] == (2 * len(IMAGES), 2 * len(IMAGES))  # each image once, not 3 shards' worth plus 2 shards' worth


def test_retired_files_are_removed_by_the_io_manager_too(tmp_path, instance):
    """A run launched from the UI does not go through the runner: the IO manager cleans up on write."""
    assert not materialize_graph(_defs(tmp_path, 3), instance, "*", log=lambda m: None).failed
    two = _defs(tmp_path, 2)
    dg.materialize(list(two.assets), instance=instance, partition_key="a|0", selection="per_shard",
                   resources=two.resources)
    left = sorted(str(p.relative_to(tmp_path / "storage")) for p in (tmp_path / "storage" / "per_shard").rglob("*.parquet"))
    assert left == ["per_shard/a/0.parquet", "per_shard/a/1.parquet", "per_shard/b/0.parquet", "per_shard/b/1.parquet"]


def test_table_file_follows_the_io_manager_layout(tmp_path):
    parts = dg.MultiPartitionsDefinition({"shard": dg.StaticPartitionsDefinition(["0"]), "dataset": dg.StaticPartitionsDefinition(["lvis"])})
    root = UPath(tmp_path)
    assert table_file(root, "t", None, None) == root / "t.parquet"
    assert table_file(root, "t", parts, "lvis|0") == root / "t" / "lvis" / "0.parquet"
    assert unreadable_reason(root / "nope.parquet") == "missing"
