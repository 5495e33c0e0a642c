"""Materialize the source assets in-process on small demo data and compare with the generator's truth."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from conftest import check_results, small_settings
from perception_tokens.demo import write_demo_datasets
from pipeline_lib import catalog
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph
from pipelines.staleness import stale_keys

SOURCES = ["ade20k_images", "lvis_images", "lvis_instances", "refcoco_images", "refcoco_refs"]


def test_sources_match_generator_truth_and_catalog(workdir):
    settings = small_settings(workdir)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    report = materialize_graph(defs, instance, "group:sources", log=lambda m: None)
    assert not report.failed, report.failed

    manifest = json.loads((settings.demo_root / "demo_manifest.json").read_text())
    storage = workdir / "storage"
    ade = pq.read_table(storage / "ade20k_images.parquet")
    assert ade.num_rows == sum(manifest["image_counts"]["ade20k"].values()) == 8
    assert sorted(ade["image_id"].to_pylist()) == sorted(manifest["image_ids"]["ade20k"])
    lvis_inst = pq.read_table(storage / "lvis_instances.parquet")
    assert lvis_inst.num_rows == sum(manifest["annotation_counts"]["lvis"].values())
    refs = pq.read_table(storage / "refcoco_refs.parquet")
    assert refs.num_rows == sum(manifest["sentence_counts"].values())
    for name in SOURCES:  # clean demo data: nothing rejected
        assert pq.read_table(storage / f"{name}_rejects.parquet").num_rows == 0

    # lineage travels in the file's key-value metadata
    lineage = json.loads(pq.read_schema(storage / "lvis_instances.parquet").metadata[b"perception_tokens.lineage"])
    assert lineage["asset_key"] == "lvis_instances"
    assert lineage["code_version"].startswith("1+")
    assert lineage["run_id"]

    # ... and in Dagster's materialization metadata, with the content hash as data version
    event = instance.get_latest_materialization_event(dg.AssetKey("ade20k_images"))
    meta = event.asset_materialization.metadata
    assert meta["dagster/row_count"].value == 8
    assert meta["lineage"].value["asset_key"] == "ade20k_images"
    assert event.asset_materialization.tags["dagster/data_version"] == meta["content_hash"].value

    # sizes and sha256 agree with the bytes stored
    import hashlib
    from PIL import Image
    import io
    for row in ade.slice(0, 3).to_pylist():
        assert hashlib.sha256(row["image_bytes"]).hexdigest() == row["sha256"]
        assert Image.open(io.BytesIO(row["image_bytes"])).size == (row["width"], row["height"])

    # the DuckDB catalog has a view per asset
    _, rows = catalog.query(settings.catalog_path, "select split, count(*) from ade20k_images group by 1 order by 1")
    assert sum(r[1] for r in rows) == 8 and {r[0] for r in rows} <= {"training", "validation"}

    results = check_results(instance)
    assert len(results) == 12 and all(results.values()), results

    # a second run with nothing changed recomputes nothing
    again = materialize_graph(defs, instance, "group:sources", log=lambda m: None)
    assert {s.status for s in again.steps} == {"skipped (fresh)"}


def test_config_change_marks_only_affected_assets_stale(workdir):
    settings = small_settings(workdir)
    instance = dg.DagsterInstance.ephemeral()
    defs = build_definitions(settings)
    selection = "group:sources or key:box_tokens or key:box_tokens_rejects"
    assert not materialize_graph(defs, instance, selection, log=lambda m: None).failed
    done = {dg.AssetKey(n) for n in SOURCES} | {dg.AssetKey(f"{n}_rejects") for n in SOURCES} | {dg.AssetKey("box_tokens"), dg.AssetKey("box_tokens_rejects")}
    graph = defs.resolve_asset_graph()
    assert stale_keys(instance, graph) & done == set()

    changed = build_definitions(small_settings(workdir, datasets={"lvis_splits": ["train"]}))
    changed_graph = changed.resolve_asset_graph()
    lvis = {"lvis_images", "lvis_images_rejects", "lvis_instances", "lvis_instances_rejects"}
    # Dagster marks exactly the materialized assets whose code version (config fingerprint) moved ...
    assert {k.to_user_string() for k in stale_keys(instance, changed_graph) & done} == lvis
    # ... and, counting what sits downstream of them, exactly their descendants
    with_desc = {k.to_user_string() for k in stale_keys(instance, changed_graph, include_descendants=True)}
    assert {"box_tokens", "pseudo_depth", "depth_vqvae", "depth_tokens", "marked_points", "curriculum", "lora_adapter"} <= with_desc
    assert not with_desc & {"ade20k_images", "ade20k_images_rejects", "refcoco_images", "refcoco_refs"}

    # re-running the selection recomputes the stale sources; their content changes (one split
    # fewer), which makes box_tokens stale through its input data version, so it runs too;
    # the ADE20K and RefCOCO sources are skipped
    report = materialize_graph(changed, instance, selection, log=lambda m: None)
    assert {s.asset for s in report.steps if s.status == "materialized"} == {"lvis_images", "lvis_instances", "box_tokens"}
    assert {s.asset for s in report.steps if s.status.startswith("skipped")} == {"ade20k_images", "refcoco_images", "refcoco_refs"}
    assert stale_keys(instance, changed_graph) & done == set()
