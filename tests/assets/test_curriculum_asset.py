"""curriculum from small depth-token and marked-point tables: samples per epoch and task as
Aurora's schedule sets them, one exact chain-of-thought conversation, the LLaVA export,
and the checks that run with it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from asset_unit_helpers import (asset_check, check_results, make_settings, materialization_metadata, materialize_asset, read_rows,
                                table_path, write_input)
from perception_tokens import schemas
from pipeline_lib.tables import TableHandle
from pipelines.definitions import build_definitions

IMAGE_1, IMAGE_2 = "ADE_train_00000001", "ADE_train_00000002"
CODES = {IMAGE_1: [(7 * k) % 128 for k in range(100)], IMAGE_2: list(range(100))}
MARKED_ID = f"ade20k:{IMAGE_1}:beside"


def _encoded(ext: str, value: int) -> bytes:
    return cv2.imencode(ext, np.full((8, 8, 3), value, np.uint8))[1].tobytes()


def _seed_inputs(settings) -> dict[str, bytes]:
    """Two ADE20K images with depth tokens, one of them marked with three points (B nearest)."""
    images = {IMAGE_1: _encoded(".jpg", 10), IMAGE_2: _encoded(".jpg", 200)}
    write_input(settings, "ade20k_images", schemas.ADE20K_IMAGE_SCHEMA, [
        {"dataset": "ade20k", "split": "training", "image_id": i, "file_name": f"images/training/{i}.jpg", "width": 8, "height": 8,
         "format": "jpeg", "sha256": f"sha-{i}", "image_bytes": data, "annotation_file": None} for i, data in images.items()])
    for dataset in ("ade20k", "lvis", "refcoco"):  # partitioned inputs: the curriculum reads every partition
        rows = [{"dataset": "ade20k", "split": "training", "image_id": i, "image_sha256": f"sha-{i}", "teacher": "t", "vqvae_version": "vq-1",
                 "codes": codes, "depth_tokens": ""} for i, codes in CODES.items()] if dataset == "ade20k" else []
        write_input(settings, "depth_tokens", schemas.DEPTH_TOKEN_SCHEMA, rows, partition=(dataset, "0"))
        write_input(settings, "pseudo_depth", schemas.PSEUDO_DEPTH_SCHEMA, [], partition=(dataset, "0"))
    marked_png = _encoded(".png", 99)
    write_input(settings, "marked_points", schemas.MARKED_POINTS_SCHEMA, [
        {"marked_id": MARKED_ID, "dataset": "ade20k", "split": "training", "image_id": IMAGE_1, "variant": "beside", "n_points": 3,
         "letters": ["A", "B", "C"], "xs": [40, 200, 300], "ys": [60, 100, 250], "depth_values": [90, 200, 120], "answer": "B",
         "labels_inside": True, "marked_png": marked_png}])
    for asset, schema in (("box_tokens", schemas.BOX_TOKEN_SCHEMA), ("lvis_images", schemas.LVIS_IMAGE_SCHEMA),
                          ("refcoco_refs", schemas.REFCOCO_REF_SCHEMA), ("refcoco_images", schemas.REFCOCO_IMAGE_SCHEMA),
                          ("lvis_instances", schemas.LVIS_INSTANCE_SCHEMA)):
        write_input(settings, asset, schema, [])
    return {**images, "marked": marked_png}


def _depth(codes) -> str:
    return "<DEPTH_START>" + "".join(f"<DEPTH_{c}>" for c in codes) + "<DEPTH_END>"


def test_curriculum_schedule_conversation_and_export(tmp_path):
    settings = make_settings(tmp_path, curriculum={
        "tasks": ["depth_atomic", "depth_cot", "depth_direct"], "schedule": "aurora", "mixing": "shuffled",
        "epochs": 3, "percents": [1.0, 0.5, 0.25], "epoch_size": 4})
    files = _seed_inputs(settings)
    result = materialize_asset(settings, "curriculum")
    rows = read_rows(settings, "curriculum")

    # pools: 2 depth_atomic, 1 depth_cot + 1 depth_direct (one image's pair, kept together);
    # epoch e holds round(4 x percents[e]) atomic samples and reasoning samples for the rest
    assert [r["position"] for r in rows] == list(range(12))
    assert Counter((r["epoch"], r["task"]) for r in rows) == {
        (0, "depth_atomic"): 4,
        (1, "depth_atomic"): 2, (1, "depth_cot"): 1, (1, "depth_direct"): 1,
        (2, "depth_atomic"): 1, (2, "depth_cot"): 2, (2, "depth_direct"): 1,
    }
    epoch1 = [r["task"] for r in rows if r["epoch"] == 1 and r["kind"] != "atomic"]
    assert epoch1 == ["depth_cot", "depth_direct"]  # one image's questions one after the other
    atomic = {r["image_id"]: r["answer"] for r in rows if r["task"] == "depth_atomic"}
    assert atomic == {IMAGE_1: _depth(CODES[IMAGE_1]), IMAGE_2: _depth(CODES[IMAGE_2])}

    cot = next(r for r in rows if r["task"] == "depth_cot")
    assert (cot["sample_id"], cot["image_file"], cot["depth_token_version"]) == (
        f"depth_cot:ade20k:{IMAGE_1}:ade20k_{IMAGE_1}_beside", f"marked/ade20k_{IMAGE_1}_beside.png", "vq-1")
    assert json.loads(cot["conversations"]) == [
        {"from": "human", "value": "<image>\nMultiple points are circled on the image, labeled by letters beside each circle. "
                                   "Which point is the closest to the camera?\nTo answer this question, let's think through it step by step, "
                                   "and we know the image is 336 x 336. First, what are the coordinates of points in the image? "
                                   "Second, what is the depth map for the image? Which point has a higher pixel value on the depth map? "
                                   "Remember, higher values indicate that the point is closer to the camera."},
        {"from": "gpt", "value": "Point A is located at (<PIXEL_40>,<PIXEL_60>), Point B is located at (<PIXEL_200>,<PIXEL_100>), "
                                 "Point C is located at (<PIXEL_300>,<PIXEL_250>). The depth map for the image is "
                                 f"{_depth(CODES[IMAGE_1])}. Since point B has the highest pixel value on the depth map, "
                                 "point B is the closest to the camera, so the answer is (B)."},
    ]
    direct = next(r for r in rows if r["task"] == "depth_direct")
    assert (direct["answer"], direct["target"]) == ("(B)", "B")

    # the LLaVA export: one record per row in the same order, every image it names written with the input's bytes
    meta = materialization_metadata(result, "curriculum")
    records = json.loads(Path(meta["llava_json"]).read_text())
    assert [rec["id"] for rec in records] == [f"{r['sample_id']}#{r['position']}" for r in rows]
    images = Path(meta["image_folder"])
    assert (images / f"ade20k/{IMAGE_1}.jpg").read_bytes() == files[IMAGE_1]
    assert (images / f"ade20k/{IMAGE_2}.jpg").read_bytes() == files[IMAGE_2]
    assert (images / f"marked/ade20k_{IMAGE_1}_beside.png").read_bytes() == files["marked"]
    assert meta["samples_per_task"] == {"depth_atomic": 7, "depth_cot": 3, "depth_direct": 2}
    assert meta["pool_sizes"] == {"depth_atomic": 2, "depth_cot": 1, "depth_direct": 1}

    checks = check_results(result)
    assert {name: c.passed for name, c in checks.items()} == {
        "curriculum_tokens_parse": True, "curriculum_images_resolve": True, "curriculum_mix_matches_schedule": True}
    assert checks["curriculum_mix_matches_schedule"].metadata["max_deviation"].value == 0.0

    # the same images check, invoked on its own, fails once an image the JSON names is gone
    (images / f"marked/ade20k_{IMAGE_1}_beside.png").unlink()
    resolve = asset_check(settings, "curriculum_images_resolve")
    storage = build_definitions(settings).resources["storage"]
    missing = resolve(storage=storage, curriculum=TableHandle([table_path(settings, "curriculum")]))
    assert not missing.passed
    assert (missing.metadata["images"].value, missing.metadata["missing"].value) == (3, 1)
    assert missing.metadata["first_missing"].value == f"marked/ade20k_{IMAGE_1}_beside.png"


def test_text_coordinates_variant_writes_points_as_integers(tmp_path):
    settings = make_settings(tmp_path, curriculum={
        "tasks": ["depth_atomic", "depth_cot", "depth_direct"], "schedule": "aurora", "mixing": "shuffled",
        "epochs": 3, "percents": [1.0, 0.5, 0.25], "epoch_size": 4, "coordinates": "text"})
    _seed_inputs(settings)
    assert materialize_asset(settings, "curriculum").success
    rows = read_rows(settings, "curriculum")
    cot = [r for r in rows if r["task"] == "depth_cot"]
    assert cot and all("<PIXEL_" not in r["answer"] and "<PIXEL_" not in r["conversations"] for r in rows)
    assert cot[0]["answer"].startswith("Point A is located at (40,60), Point B is located at (200,100), "
                                       "Point C is located at (300,250). The depth map for the image is <DEPTH_START>")
