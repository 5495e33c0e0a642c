"""Where Dagster's UI staleness stops (>= 100 upstream partitions per partition), the assets say so
in their materialization metadata and a log warning (issue 16.2: nothing silently unchecked)."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
import pytest

from pipeline_lib.emit import emit_table
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.resources import StorageResource
from pipeline_lib.settings import settings_from_dict
from pipeline_lib.staleness_limit import skipped_edges, unchecked_staleness_note
from pipelines.definitions import build_definitions

SCHEMA = pa.schema([("n", pa.int64())])


def _defs(root, shards: int) -> dg.Definitions:
    parts = dg.StaticPartitionsDefinition([f"s{i:03d}" for i in range(shards)])
    spec = dg.AssetSpec("shards", partitions_def=parts)  # materialized elsewhere

    @dg.asset(deps=[spec])
    def tokenizer(context, storage: StorageResource):
        return emit_table(context, storage, SCHEMA, [{"n": 1}], metadata={"kept": 1})

    @dg.asset(deps=[tokenizer])
    def downstream(context, storage: StorageResource):
        return emit_table(context, storage, SCHEMA, [{"n": 2}])

    @dg.asset
    def elsewhere(context, storage: StorageResource):
        return emit_table(context, storage, SCHEMA, [{"n": 3}])

    return dg.Definitions(assets=[spec, tokenizer, downstream, elsewhere], resources={
        "io_manager": ParquetIOManagerFactory(root=str(root)), "storage": StorageResource(root=str(root))})


def _run(tmp_path, shards: int):
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        defs = _defs(tmp_path / "storage", shards)
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey(k) for k in ("tokenizer", "downstream", "elsewhere")])
        assert result.success
        meta = {k: result.asset_materializations_for_node(k)[0].metadata for k in ("tokenizer", "downstream", "elsewhere")}
        warnings = [r.user_message for r in instance.all_logs(result.run_id) if r.level == 30 and r.user_message]
        return meta, warnings


def test_120_partitions_mark_the_reader_and_everything_below_it(tmp_path):
    meta, warnings = _run(tmp_path, 120)
    for key in ("tokenizer", "downstream"):
        note = meta[key]["staleness_unchecked"].value
        assert f"does not cover {key}: tokenizer reads 120 partitions of shards" in note
        assert "ptok materialize" in note
        assert sum(f"does not cover {key}:" in w for w in warnings) == 1, warnings
    assert meta["tokenizer"]["kept"].value == 1  # the asset's own metadata is kept
    assert "staleness_unchecked" not in meta["elsewhere"]
    assert not any("does not cover elsewhere" in w for w in warnings)


def test_6_partitions_say_nothing(tmp_path):
    meta, warnings = _run(tmp_path, 6)
    assert all("staleness_unchecked" not in m for m in meta.values())
    assert not any("UI staleness" in w for w in warnings), warnings


@pytest.mark.parametrize("shards, affected", [(40, True), (2, False)])
def test_project_graph_depth_vqvae_and_below(tmp_path, monkeypatch, shards, affected):
    """3 datasets x 40 shards = 120 pseudo_depth partitions: depth_vqvae reads all of them, so it,
    depth_tokens and the curriculum are under the skipped edge; per-image stages above it are not."""
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    graph = build_definitions(settings_from_dict({"datasets": {"num_shards": shards}})).resolve_asset_graph()
    key = dg.AssetKey
    for name in ("depth_vqvae", "depth_tokens", "curriculum"):
        note = unchecked_staleness_note(graph, key(name))
        assert (note is not None) == affected, (name, note)
    for name in ("pseudo_depth", "ade20k_images"):
        assert unchecked_staleness_note(graph, key(name)) is None
    if affected:
        assert (key("pseudo_depth"), key("depth_vqvae"), 120) in skipped_edges(graph, key("depth_tokens"))
