"""pseudo_depth for one partition (ade20k, shard 0) with the demo's ground-truth teacher:
rows match the scenes' exact depth, a second run reuses every row, an undecodable image
becomes a reject row."""

from __future__ import annotations

import dagster as dg
import numpy as np

from asset_unit_helpers import materialization_metadata, materialize_asset, read_rows, table_path, write_input
from perception_tokens.demo import load_ground_truth_depth
from perception_tokens.depth import decode_png
from perception_tokens.schemas import ADE20K_IMAGE_SCHEMA, LVIS_IMAGE_SCHEMA, REFCOCO_IMAGE_SCHEMA

ADE20K_SHARD_0 = dg.MultiPartitionKey({"dataset": "ade20k", "shard": "0"})


def _materialize_sources(settings) -> None:
    """ade20k_images read from the world; pseudo_depth also reads the other two image tables (empty here)."""
    materialize_asset(settings, "ade20k_images")
    write_input(settings, "lvis_images", LVIS_IMAGE_SCHEMA, [])
    write_input(settings, "refcoco_images", REFCOCO_IMAGE_SCHEMA, [])


def test_pseudo_depth_one_partition_matches_ground_truth(tiny_world):
    settings, manifest = tiny_world
    _materialize_sources(settings)
    result = materialize_asset(settings, "pseudo_depth", partition_key=ADE20K_SHARD_0)

    assert table_path(settings, "pseudo_depth", ("ade20k", "0")).exists()
    rows = read_rows(settings, "pseudo_depth", ("ade20k", "0"))
    images = {r["image_id"]: r for r in read_rows(settings, "ade20k_images")}
    assert [r["image_id"] for r in rows] == list(images) == manifest.image_ids["ade20k"]  # one shard holds them all
    for r in rows:
        assert (r["dataset"], r["teacher"]) == ("ade20k", "ground_truth:demo_scenes")
        assert r["image_sha256"] == images[r["image_id"]]["sha256"]
        assert r["split"] == images[r["image_id"]]["split"]
        inverse = 1.0 / load_ground_truth_depth(settings.demo_root, "ade20k", r["image_id"]).astype(np.float64)
        png = decode_png(r["depth_png"])
        assert png.shape == inverse.shape == (r["height"], r["width"])
        assert np.isclose(r["raw_min"], inverse.min(), rtol=1e-6) and np.isclose(r["raw_max"], inverse.max(), rtol=1e-6)
        # larger = nearer: the nearest pixel is 255, the farthest 0, the rest min-max scaled (truncated)
        assert png[np.unravel_index(inverse.argmax(), inverse.shape)] == 255
        assert png[np.unravel_index(inverse.argmin(), inverse.shape)] == 0
        expected = (inverse - inverse.min()) / (inverse.max() - inverse.min()) * 255.0
        assert np.abs(png.astype(np.float64) - expected).max() <= 1.0
    assert read_rows(settings, "pseudo_depth_rejects", ("ade20k", "0")) == []

    meta = materialization_metadata(result, "pseudo_depth")
    assert (meta["images_labelled"], meta["images_reused"], meta["teacher"]) == (3, 0, "ground_truth:demo_scenes")
    assert meta["lineage"]["partition"] == "ade20k|0"

    # a second run finds every row valid for these images and this teacher: nothing relabelled, same content
    again = materialization_metadata(materialize_asset(settings, "pseudo_depth", partition_key=ADE20K_SHARD_0), "pseudo_depth")
    assert (again["images_labelled"], again["images_reused"]) == (0, 3)
    assert again["content_hash"] == meta["content_hash"]


def test_pseudo_depth_rejects_an_undecodable_image(tiny_world):
    settings, _ = tiny_world
    _materialize_sources(settings)
    images = read_rows(settings, "ade20k_images")
    broken = images[1]["image_id"]
    images[1]["image_bytes"] = b"\xff\xd8\xff truncated jpeg"
    write_input(settings, "ade20k_images", ADE20K_IMAGE_SCHEMA, images)

    result = materialize_asset(settings, "pseudo_depth", partition_key=ADE20K_SHARD_0)
    rows = read_rows(settings, "pseudo_depth", ("ade20k", "0"))
    assert [r["image_id"] for r in rows] == [images[0]["image_id"], images[2]["image_id"]]
    (reject,) = read_rows(settings, "pseudo_depth_rejects", ("ade20k", "0"))
    assert (reject["dataset"], reject["stage"], reject["record_id"]) == ("ade20k", "pseudo_depth", broken)
    assert reject["reason"] == "not an image"
    assert materialization_metadata(result, "pseudo_depth")["images_labelled"] == 2
