"""ade20k_images on a 3-image world: rows and bytes read from the files, a broken image becomes
a reject row, and the reject-rate check passes or fails against max_reject_fraction."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from upath import UPath

from assets.checks import reject_rate_check
from perception_tokens.schemas import ADE20K_IMAGE_SCHEMA
from pipeline_lib.tables import TableHandle, write_table_atomic
from asset_unit_helpers import check_results, make_settings, materialization_metadata, materialize_asset, read_rows, table_path

BROKEN = "ADE_train_00000002"


def _break_one_image(settings) -> Path:
    path = Path(settings.dataset_root("ade20k")) / "images" / "training" / f"{BROKEN}.jpg"
    path.write_bytes(b"this is not a JPEG")
    return path


def test_ade20k_images_rows_and_reject(tiny_world):
    settings, manifest = tiny_world
    broken = _break_one_image(settings)
    result = materialize_asset(settings, "ade20k_images", raise_on_error=False)
    assert result.success  # a bad image is a reject row, not a failed run

    rows = read_rows(settings, "ade20k_images")
    root = Path(settings.dataset_root("ade20k"))
    assert [r["image_id"] for r in rows] == ["ADE_train_00000001", "ADE_val_00000001"]
    for r in rows:
        data = (root / r["file_name"]).read_bytes()
        assert r["image_bytes"] == data
        assert r["sha256"] == hashlib.sha256(data).hexdigest()
        assert (r["width"], r["height"]) == tuple(manifest.image_sizes["ade20k"][r["image_id"]])
        assert r["split"] == manifest.image_splits["ade20k"][r["image_id"]]
        assert r["format"] == "jpeg"
        assert r["annotation_file"] == f"annotations/{r['split']}/{r['image_id']}.png"

    rejects = read_rows(settings, "ade20k_images_rejects")
    assert len(rejects) == 1
    (reject,) = rejects
    assert (reject["dataset"], reject["record_id"], reject["file"]) == ("ade20k", BROKEN, str(broken))
    assert reject["reason"].startswith("bad image: ")

    meta = materialization_metadata(result, "ade20k_images")
    assert meta["dagster/row_count"] == 2
    assert meta["lineage"]["asset_key"] == "ade20k_images"
    assert meta["content_hash"] and len(meta["content_hash"]) == 24
    reasons = materialization_metadata(result, "ade20k_images_rejects")["reasons"]
    assert reasons == {"bad image": 1}

    # the checks that ran with the asset: ids are unique; 1 of 3 rejected is over the 5% threshold
    checks = check_results(result)
    assert checks["ade20k_images_ids_unique"].passed
    assert checks["ade20k_images_ids_unique"].metadata["duplicates"].value == 0
    rate = checks["ade20k_images_reject_rate"]
    assert not rate.passed
    assert rate.metadata["kept"].value == 2 and rate.metadata["rejected"].value == 1
    assert rate.metadata["reject_rate"].value == pytest.approx(1 / 3)


def test_reject_rate_check_passes_under_a_looser_threshold(tiny_world, tmp_path):
    settings, _ = tiny_world
    _break_one_image(settings)
    loose = make_settings(tmp_path, datasets={"max_reject_fraction": 0.5})
    result = materialize_asset(loose, "ade20k_images")
    check = check_results(result)["ade20k_images_reject_rate"]
    assert check.passed
    assert check.metadata["threshold"].value == 0.5


def test_reject_rate_check_invoked_on_tables(tiny_world, tmp_path):
    """The check alone, called with the two tables: the same verdicts as in the run."""
    settings, _ = tiny_world
    _break_one_image(settings)
    materialize_asset(settings, "ade20k_images")
    table = TableHandle([table_path(settings, "ade20k_images")])
    rejects = TableHandle([table_path(settings, "ade20k_images_rejects")])
    assert reject_rate_check("ade20k_images", max_fraction=0.4)(table=table, rejects=rejects).passed
    failed = reject_rate_check("ade20k_images", max_fraction=0.3)(table=table, rejects=rejects)
    assert not failed.passed and failed.metadata["rejected"].value == 1
    # nothing read at all fails whatever the threshold, with the reason said
    nothing = UPath(tmp_path / "empty.parquet")
    write_table_atomic(nothing, ADE20K_IMAGE_SCHEMA.empty_table())
    empty = reject_rate_check("ade20k_images", max_fraction=1.0)(table=TableHandle([nothing]), rejects=rejects)
    assert not empty.passed and empty.description == "no rows were read at all"
