"""curriculum under profile perceptio: refer_segment rows with masks from refcoco_refs of all three sets,
the LLaVA export carrying mask_rle, curriculum_rejects with the reasons, and the curriculum's checks."""

from __future__ import annotations

import json

import cv2
import numpy as np

from asset_unit_helpers import check_results, make_settings, materialization_metadata, materialize_asset, read_rows, write_input
from assets.curriculum_export import LlavaExport
from perception_tokens import schemas
from perception_tokens.masks import mask_to_rle, rle_to_mask
from pipeline_lib.tables import TableHandle
from tests.assets.asset_unit_helpers import table_path

W, H = 12, 8
CODES = [(3 * k) % 128 for k in range(100)]


def _mask(x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[1:7, x0:x1] = 1
    return m


def _ref(dataset, split, image_id, sentence_id, sentence, mask):
    return {"dataset": dataset, "split": split, "ref_id": sentence_id, "ann_id": 50 + sentence_id, "image_id": image_id,
            "category_id": 1, "category_name": "ball", "sentence_id": sentence_id, "sentence": sentence, "bbox_x": 0.0,
            "bbox_y": 0.0, "bbox_w": 4.0, "bbox_h": 4.0, "image_width": W, "image_height": H,
            "mask_rle": None if mask is None else mask_to_rle(mask)}


def _seed(settings) -> None:
    jpg = cv2.imencode(".jpg", np.full((H, W, 3), 120, np.uint8))[1].tobytes()
    write_input(settings, "refcoco_images", schemas.REFCOCO_IMAGE_SCHEMA, [
        {"dataset": "refcoco", "split": "train", "image_id": i, "file_name": f"COCO_train2014_{i}.jpg", "width": W, "height": H,
         "format": "jpeg", "sha256": f"sha-{i}", "image_bytes": jpg} for i in ("1", "2")])
    for dataset in ("ade20k", "lvis", "refcoco"):
        rows = [{"dataset": "refcoco", "split": "train", "image_id": "1", "image_sha256": "sha-1", "teacher": "t",
                 "vqvae_version": "vq-1", "codes": CODES, "depth_tokens": ""}] if dataset == "refcoco" else []
        write_input(settings, "depth_tokens", schemas.DEPTH_TOKEN_SCHEMA, rows, partition=(dataset, "0"))
        write_input(settings, "pseudo_depth", schemas.PSEUDO_DEPTH_SCHEMA, [], partition=(dataset, "0"))
    write_input(settings, "refcoco_refs", schemas.REFCOCO_REF_SCHEMA, [
        _ref("refcoco", "train", "1", 1, "left ball", _mask(0, 4)),
        _ref("refcoco+", "train", "1", 1, "red ball", _mask(0, 4)),
        _ref("refcocog", "train", "1", 2, "the blue box on the right", _mask(7, 12)),
        _ref("refcoco", "val", "1", 3, "right box", _mask(7, 12)),
        _ref("refcocog", "train", "2", 4, "a cup", _mask(0, 4)),  # image 2: no depth tokens
        _ref("refcoco+", "train", "1", 5, "plate", None),
    ])
    for asset, schema in (("ade20k_images", schemas.ADE20K_IMAGE_SCHEMA), ("lvis_images", schemas.LVIS_IMAGE_SCHEMA),
                          ("box_tokens", schemas.BOX_TOKEN_SCHEMA), ("lvis_instances", schemas.LVIS_INSTANCE_SCHEMA),
                          ("marked_points", schemas.MARKED_POINTS_SCHEMA)):
        write_input(settings, asset, schema, [])


def test_perceptio_curriculum_rows_export_rejects_and_checks(tmp_path):
    settings = make_settings(tmp_path, profile="perceptio", curriculum={"epochs": 2})
    _seed(settings)
    result = materialize_asset(settings, "curriculum")
    rows = read_rows(settings, "curriculum")

    assert [(r["epoch"], r["task"]) for r in rows] == [(0, "refer_segment")] * 3 + [(1, "refer_segment")] * 3
    by_id = {r["sample_id"]: r for r in rows}
    assert set(by_id) == {"refer_segment:refcoco:1:1", "refer_segment:refcoco+:1:1", "refer_segment:refcocog:1:2"}
    g = by_id["refer_segment:refcocog:1:2"]
    assert g["question"] == 'Segment the object that this phrase refers to: "the blue box on the right". ' \
                            "Then give the depth map of the image and describe the object in one sentence."
    assert g["answer"].startswith("[SEG] <DEPTH_START><DEPTH_0><DEPTH_3><DEPTH_6>")
    assert g["answer"].endswith("<DEPTH_END> It is the the blue box on the right.")
    assert np.array_equal(rle_to_mask(g["mask_rle"]), _mask(7, 12))
    assert g["image_file"] == "refcoco/1.jpg" and g["depth_token_version"] == "vq-1"

    export = LlavaExport.from_table(TableHandle([table_path(settings, "curriculum")]))
    records = json.loads(export.verified_json(settings.storage.root).read_text())
    assert len(records) == 6 and all(np.array_equal(rle_to_mask(rec["mask_rle"]), rle_to_mask(by_id[rec["id"].split("#")[0]]["mask_rle"]))
                                     for rec in records)

    rejects = {r["record_id"]: r["reason"] for r in read_rows(settings, "curriculum_rejects")}
    assert rejects == {"refcocog ref 4 sentence 4": "no depth tokens for image 2 (no pseudo_depth / depth_tokens row)",
                       "refcoco+ ref 5 sentence 5": "no mask for the referred object (mask_rle is null)"}
    meta = materialization_metadata(result, "curriculum")
    assert meta["held_out_sentences"] == {"refcoco/val": 1} and meta["samples_with_mask"] == 6
    checks = check_results(result)
    assert {name: checks[name].passed for name in ("curriculum_tokens_parse", "curriculum_images_resolve",
                                                    "curriculum_perceptio_samples", "curriculum_mix_matches_schedule")} == \
        dict.fromkeys(("curriculum_tokens_parse", "curriculum_images_resolve", "curriculum_perceptio_samples",
                       "curriculum_mix_matches_schedule"), True)
