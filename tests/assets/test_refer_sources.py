"""refcoco_refs reads RefCOCO+ and RefCOCOg beside RefCOCO when datasets.refer_datasets says so."""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest

from pipeline_lib.settings import ConfigError
from pipeline_lib.resources import DatasetsResource
from tests.assets.asset_unit_helpers import make_settings, materialize_asset, table_path


def test_the_default_reads_refcoco_only_and_needs_no_other_root(tmp_path):
    settings = make_settings(tmp_path, demo={"enabled": False},
                             datasets={"ade20k_root": "/a", "lvis_root": "/l", "coco_root": "/c", "refcoco_root": "/r"})
    config = DatasetsResource.derived_config(settings)
    assert settings.datasets.refer_datasets == ["refcoco"]
    assert config["refcoco_plus_root"] is None and config["refcocog_root"] is None
    with pytest.raises(ConfigError, match="datasets.refcocog_root is not set and demo.enabled is false"):
        DatasetsResource.derived_config(make_settings(
            tmp_path, demo={"enabled": False}, datasets={"ade20k_root": "/a", "lvis_root": "/l", "coco_root": "/c",
                                                         "refcoco_root": "/r", "refer_datasets": ["refcoco", "refcocog"]}))
    with pytest.raises(ConfigError, match="names a dataset twice"):
        make_settings(tmp_path, datasets={"refer_datasets": ["refcoco", "refcoco"]})


def test_refcoco_refs_holds_all_three_with_masks_when_enabled(tmp_path):
    settings = make_settings(tmp_path, datasets={"refer_datasets": ["refcoco", "refcoco+", "refcocog"]})
    result = materialize_asset(settings, "refcoco_refs")
    assert result.success
    table = pq.read_table(str(table_path(settings, "refcoco_refs")))
    rows = table.to_pylist()
    by_dataset = Counter(r["dataset"] for r in rows)
    assert set(by_dataset) == {"refcoco", "refcoco+", "refcocog"}
    assert all(r["mask_rle"]["size"] == [r["image_height"], r["image_width"]] and r["mask_rle"]["counts"] for r in rows)
    assert {r["split"] for r in rows if r["dataset"] == "refcocog"} <= {"train", "val", "test"}
    rejects = pq.read_table(str(table_path(settings, "refcoco_refs_rejects")))
    assert rejects.num_rows == 0


def test_refcoco_images_holds_the_images_only_refcocog_refers_to(tmp_path):
    """Perceptio trains on RefCOCOg's sentences, whose umd split refers to COCO images RefCOCO does not
    list: refcoco_images reads every enabled set's images, each once, so pseudo_depth / depth_tokens
    (partition dataset "refcoco") cover them."""
    import json

    from pipeline_lib.demo_world import ensure_demo_datasets
    from tests.assets.asset_unit_helpers import TINY_DEMO

    base = make_settings(tmp_path)
    demo = {k: v for k, v in TINY_DEMO.items() if k != "seed"}
    ensure_demo_datasets(tmp_path / "demo", seed=TINY_DEMO["seed"], **demo)
    instances = tmp_path / "demo" / "refcoco" / "instances.json"
    doc = json.loads(instances.read_text())
    dropped = str(doc["images"][-1]["id"])  # RefCOCO no longer lists this image; RefCOCO+ / RefCOCOg still do
    doc["images"] = doc["images"][:-1]
    doc["annotations"] = [a for a in doc["annotations"] if str(a["image_id"]) != dropped]
    instances.write_text(json.dumps(doc))

    materialize_asset(base, "refcoco_images")
    alone = pq.read_table(str(table_path(base, "refcoco_images"))).column("image_id").to_pylist()
    assert dropped not in alone and len(alone) == TINY_DEMO["n_refcoco"] - 1

    both = make_settings(tmp_path / "both", demo={"root": str(tmp_path / "demo")},
                         datasets={"refer_datasets": ["refcoco", "refcocog"]})
    materialize_asset(both, "refcoco_images")
    ids = pq.read_table(str(table_path(both, "refcoco_images"))).column("image_id").to_pylist()
    assert sorted(ids) == sorted(alone + [dropped])  # each image once
    assert pq.read_table(str(table_path(both, "refcoco_images_rejects"))).num_rows == 0
