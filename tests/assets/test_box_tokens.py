"""box_tokens from given LVIS instances and RefCOCO refs: exact token strings on the 336 grid,
one row per referred object, bad boxes as reject rows."""

from __future__ import annotations

from asset_unit_helpers import make_settings, materialization_metadata, materialize_asset, read_rows, write_input
from perception_tokens.schemas import LVIS_INSTANCE_SCHEMA, REFCOCO_REF_SCHEMA


def _lvis(annotation_id, bbox, width=670, height=335):
    x, y, w, h = bbox
    return {"dataset": "lvis", "split": "train", "annotation_id": annotation_id, "image_id": "139", "category_id": 3,
            "category_name": "cup", "synset": "cup.n.01", "frequency": "f", "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h,
            "image_width": width, "image_height": height, "area": w * h, "category_exhaustive": True}


def _ref(ref_id, ann_id, sentence_id, bbox, width=335, height=670):
    x, y, w, h = bbox
    return {"dataset": "refcoco", "split": "train", "ref_id": ref_id, "ann_id": ann_id, "image_id": "581857", "category_id": 1,
            "category_name": "person", "sentence_id": sentence_id, "sentence": f"sentence {sentence_id}",
            "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h, "image_width": width, "image_height": height}


def test_box_tokens_exact_strings_and_rejects(tmp_path):
    settings = make_settings(tmp_path)
    write_input(settings, "lvis_instances", LVIS_INSTANCE_SCHEMA, [
        _lvis(11, (100.0, 20.0, 200.0, 40.0)),    # 670x335 image: x scaled by 335/670, y by 1
        _lvis(12, (600.0, 300.0, 100.0, 100.0)),  # runs past the right and bottom edges: clamped to 335
        _lvis(13, (10.0, 10.0, 0.0, 5.0)),        # zero width
    ])
    write_input(settings, "refcoco_refs", REFCOCO_REF_SCHEMA, [
        _ref(7, 70, 1, (10.0, 100.0, 20.0, 50.0)),  # 335x670 image: x by 1, y by 335/670
        _ref(7, 70, 2, (10.0, 100.0, 20.0, 50.0)),  # a second sentence of the same ref: one box
        _ref(8, 80, 3, (400.0, 10.0, 5.0, 5.0)),    # right of the 335 px wide image
    ])
    result = materialize_asset(settings, "box_tokens")

    rows = read_rows(settings, "box_tokens")
    assert [(r["dataset"], r["annotation_id"], r["ref_id"], r["box_tokens"]) for r in rows] == [
        ("lvis", 11, None, "(<PIXEL_50>,<PIXEL_20>,<PIXEL_150>,<PIXEL_60>)"),
        ("lvis", 12, None, "(<PIXEL_300>,<PIXEL_300>,<PIXEL_335>,<PIXEL_335>)"),
        ("refcoco", 70, 7, "(<PIXEL_10>,<PIXEL_50>,<PIXEL_30>,<PIXEL_75>)"),
    ]
    assert [(r["x1"], r["y1"], r["x2"], r["y2"]) for r in rows] == [(50, 20, 150, 60), (300, 300, 335, 335), (10, 50, 30, 75)]
    assert {(r["image_id"], r["category_name"], r["image_width"], r["image_height"]) for r in rows} == {
        ("139", "cup", 670, 335), ("581857", "person", 335, 670)}

    rejects = read_rows(settings, "box_tokens_rejects")
    assert [(r["dataset"], r["stage"], r["file"], r["record_id"], r["reason"]) for r in rejects] == [
        ("lvis", "box_tokens", "image 139", "13", "box [10.0, 10.0, 0.0, 5.0] has non-positive width or height"),
        ("refcoco", "box_tokens", "image 581857", "8", "box [400.0, 10.0, 5.0, 5.0] lies outside the 335x670 image"),
    ]
    assert materialization_metadata(result, "box_tokens")["dagster/row_count"] == 3
    assert materialization_metadata(result, "box_tokens_rejects")["reasons"] == {
        "box [10.0, 10.0, 0.0, 5.0] has non-positive width or height": 1,
        "box [400.0, 10.0, 5.0, 5.0] lies outside the 335x670 image": 1,
    }
