"""RefCOCO+ and RefCOCOg beside RefCOCO: the refer layout, masks as RLE, rejects with reasons."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pyarrow as pa
import pytest

from perception_tokens import schemas
from perception_tokens.datasets.refcoco import REFER_DATASETS, iter_refcoco_images, iter_refcoco_refs, read_refer_dataset
from perception_tokens.demo import write_demo_datasets
from perception_tokens.demo.encoding import draw_scene
from perception_tokens.masks import MaskFormatError, mask_to_rle, rle_to_mask, segmentation_to_rle
from perception_tokens.rejects import split_rows

SIZE = (96, 72)
SEED = 11


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("refer_src")
    manifest = write_demo_datasets(root, n_ade20k=2, n_lvis=2, n_refcoco=8, image_size=SIZE, seed=SEED)
    return root, manifest


def _rows(folder, dataset, image_sizes=None):
    return split_rows(iter_refcoco_refs(read_refer_dataset(folder, dataset), image_sizes))


def test_the_demo_writes_the_refer_layout_of_all_three(demo):
    root, m = demo
    assert sorted(p.name for p in (root / "refcoco").iterdir()) == ["instances.json", "refs(unc).p"]
    assert sorted(p.name for p in (root / "refcoco+").iterdir()) == ["instances.json", "refs(unc).p"]
    assert sorted(p.name for p in (root / "refcocog").iterdir()) == ["instances.json", "refs(google).p", "refs(umd).p"]
    # the three share the COCO annotations, as the real sets share train2014
    assert (root / "refcoco+" / "instances.json").read_bytes() == (root / "refcoco" / "instances.json").read_bytes()
    google = pickle.loads((root / "refcocog" / "refs(google).p").read_bytes())  # trusted: our own demo file
    assert {r["split"] for r in google} == {"train", "val"}


@pytest.mark.parametrize("dataset", list(REFER_DATASETS))
def test_each_dataset_reads_with_its_own_splits_and_no_rejects(demo, dataset):
    root, m = demo
    rows, rejects = _rows(root / REFER_DATASETS[dataset][0], dataset)
    assert rejects == []
    assert {r["dataset"] for r in rows} == {dataset}
    expected = {"refcoco": {"train", "val", "testA", "testB"}, "refcoco+": {"train", "val", "testA", "testB"},
                "refcocog": {"train", "val", "test"}}[dataset]
    assert {r["split"] for r in rows} == expected
    if dataset != "refcoco":
        n_refs = {}
        for r in rows:
            n_refs.setdefault(r["split"], set()).add(r["ref_id"])
        assert {s: len(v) for s, v in n_refs.items()} == {s: k for s, k in m.refer_ref_counts[dataset].items() if k}
    if dataset == "refcoco+":  # RefCOCO+ has no location words
        assert not any(w in r["sentence"].split() for r in rows for w in ("left", "right", "middle"))
    if dataset == "refcocog":  # RefCOCOg sentences are long
        assert np.mean([len(r["sentence"].split()) for r in rows]) >= 7


def test_row_masks_round_trip_the_polygons_and_match_the_scene(demo):
    """The stored RLE decodes to exactly pycocotools' rasterisation of the annotation's polygons,
    and that is the scene's true object mask up to the polygon tracing (IoU > 0.9)."""
    root, m = demo
    index = read_refer_dataset(root / "refcocog", "refcocog")
    rows, _ = _rows(root / "refcocog", "refcocog")
    true_masks = {}
    for i, image_id in enumerate(m.image_ids["refcoco"]):
        _, scene, _ = draw_scene(SEED, "refcoco", i, SIZE)
        anns = index.coco.imgToAnns[int(image_id)]
        assert len(anns) == len(scene.objects)
        for ann, obj in zip(anns, scene.objects):
            true_masks[ann["id"]] = obj.mask
    for r in rows:
        mask = rle_to_mask(r["mask_rle"])
        assert r["mask_rle"]["size"] == [r["image_height"], r["image_width"]]
        assert np.array_equal(mask, index.coco.annToMask(index.coco.anns[r["ann_id"]]).astype(bool))
        truth = true_masks[r["ann_id"]]
        assert (mask & truth).sum() / (mask | truth).sum() > 0.9


def test_masks_are_stored_as_rle_in_the_ref_table(demo):
    root, _ = demo
    rows, _ = _rows(root / "refcoco", "refcoco")
    table = pa.Table.from_pylist(rows, schema=schemas.REFCOCO_REF_SCHEMA)
    assert table.schema.field("mask_rle").type == schemas.MASK_RLE_TYPE
    back = table.column("mask_rle").to_pylist()[0]
    assert isinstance(back["counts"], str) and np.array_equal(rle_to_mask(back), rle_to_mask(rows[0]["mask_rle"]))


def _edit_instances(src, dst, edit):
    shutil.copytree(src, dst)
    doc = json.loads((dst / "instances.json").read_text())
    edit(doc)
    (dst / "instances.json").write_text(json.dumps(doc))
    return doc


def test_a_malformed_polygon_becomes_a_reject_with_the_reason(demo, tmp_path):
    root, _ = demo
    bad = {}

    def edit(doc):
        ann = doc["annotations"][0]
        ann["segmentation"] = [[1.0, 2.0, 3.0, 4.0, 5.0]]  # odd count, fewer than 3 points
        bad["id"] = ann["id"]
    _edit_instances(root / "refcoco+", tmp_path / "refcoco+", edit)
    good_rows, _ = _rows(root / "refcoco+", "refcoco+")
    rows, rejects = _rows(tmp_path / "refcoco+", "refcoco+")
    expected_lost = [r for r in good_rows if r["ann_id"] == bad["id"]]
    assert expected_lost and len(rejects) == len(expected_lost)
    assert len(rows) + len(rejects) == len(good_rows)
    assert {(j.dataset, j.stage) for j in rejects} == {("refcoco+", "refcoco_refs")}
    assert all(j.reason == f"annotation {bad['id']} segmentation unusable: polygon 0 has 5 coordinates; "
               "a polygon needs an even number, at least 6 (3 points)" for j in rejects)


def test_a_ref_whose_image_is_missing_is_rejected(demo, tmp_path):
    root, m = demo
    folder = tmp_path / "data"
    shutil.copytree(root / "refcocog", folder / "refcocog")
    shutil.copytree(root / "coco" / "train2014", folder / "train2014")
    gone = m.image_ids["refcoco"][0]
    victim = next((folder / "train2014").glob(f"*_{int(gone):012d}.jpg"))
    victim.unlink()
    index = read_refer_dataset(folder / "refcocog", "refcocog")
    images, image_rejects = split_rows(iter_refcoco_images(index, folder / "train2014"))
    assert [j.record_id for j in image_rejects] == [gone]
    sizes = {r["image_id"]: (r["width"], r["height"]) for r in images}
    rows, rejects = split_rows(iter_refcoco_refs(index, sizes))
    assert rejects and all(j.reason == f"image {gone} is not available (missing or rejected)" for j in rejects)
    assert gone not in {r["image_id"] for r in rows}


def test_segmentation_forms_and_their_errors():
    square = [[2.0, 2.0, 6.0, 2.0, 6.0, 6.0, 2.0, 6.0]]
    rle = segmentation_to_rle(square, 8, 10)
    mask = rle_to_mask(rle)
    assert mask.shape == (8, 10) and mask.sum() == 16 and mask[2:6, 2:6].all()
    # uncompressed (crowd) and compressed RLE give the same mask back
    flat = mask.flatten(order="F").astype(int)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    assert segmentation_to_rle({"size": [8, 10], "counts": runs}, 8, 10) == rle
    assert segmentation_to_rle(mask_to_rle(mask), 8, 10) == rle
    with pytest.raises(MaskFormatError, match="not the image size"):
        segmentation_to_rle(rle, 9, 10)
    with pytest.raises(MaskFormatError, match="no pixel"):  # a sliver inside the image, under half a pixel
        segmentation_to_rle([[1.0, 1.0, 1.2, 1.0, 1.2, 1.2]], 8, 10)
    with pytest.raises(MaskFormatError, match=r"polygon 0 has a point \(1000000000.0, 2.0\) outside the 10x8 image"):
        segmentation_to_rle([[1.0, 1.0, 1e9, 2.0, 3.0, 3.0]], 8, 10)
    with pytest.raises(MaskFormatError, match="not a finite number"):
        segmentation_to_rle([[1.0, 1.0, float("nan"), 2.0, 3.0, 3.0]], 8, 10)
    with pytest.raises(MaskFormatError, match="cover the 8x10 image exactly"):
        rle_to_mask({"size": [8, 10], "counts": rle["counts"][:-2]})
