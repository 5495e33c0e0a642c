"""The demo writer: official layouts and fields of ADE20K, LVIS v1 and RefCOCO."""

from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from perception_tokens.demo import load_ground_truth_depth, write_demo_datasets
from perception_tokens.demo.catalog import SCENE_CATEGORY_INFO
from perception_tokens.safe_pickle import load_restricted_pickle

SIZES = dict(n_ade20k=6, n_lvis=10, n_refcoco=8, image_size=(128, 96), seed=3)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, write_demo_datasets(root, **SIZES)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_other_seed_differs(demo, tmp_path):
    root, manifest = demo
    again = tmp_path / "again"
    write_demo_datasets(again, **SIZES)
    a, b = _files(root), _files(again)
    assert sorted(a) == sorted(b)
    assert all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]][:5]
    other = tmp_path / "other"
    write_demo_datasets(other, **{**SIZES, "seed": 4})
    assert _files(other)["lvis/lvis_v1_train.json"] != a["lvis/lvis_v1_train.json"]


def test_manifest_counts(demo):
    root, m = demo
    assert m.image_counts == {
        "ade20k": {"training": 5, "validation": 1},
        "lvis": {"train": 8, "val": 2},
        "refcoco": {"train": 5, "val": 1, "testA": 1, "testB": 1},
    }
    assert {k: len(v) for k, v in m.image_ids.items()} == {"ade20k": 6, "lvis": 10, "refcoco": 8}
    assert not set(m.image_ids["lvis"]) & set(m.image_ids["refcoco"])
    on_disk = json.loads((root / "demo_manifest.json").read_text())
    assert on_disk["image_counts"] == m.image_counts and on_disk["ref_counts"] == m.ref_counts
    assert m.n_sentences >= m.n_refs == m.annotation_counts["refcoco"]["all"]


def test_ade20k_layout_and_masks(demo):
    root, m = demo
    base = root / "ADEChallengeData2016"
    assert sorted(p.name for p in (base / "images" / "training").iterdir())[0] == "ADE_train_00000001.jpg"
    assert [p.name for p in (base / "images" / "validation").iterdir()] == ["ADE_val_00000001.jpg"]
    allowed = {0, 1, 4, 6} | {c.ade_index for c in SCENE_CATEGORY_INFO.values()}
    for image_id in m.image_ids["ade20k"]:
        split = m.image_splits["ade20k"][image_id]
        img = Image.open(base / "images" / split / f"{image_id}.jpg")
        ann = Image.open(base / "annotations" / split / f"{image_id}.png")
        assert img.format == "JPEG" and img.mode == "RGB" and ann.mode == "L"
        assert img.size == ann.size == tuple(m.image_sizes["ade20k"][image_id])
        labels = set(np.unique(np.asarray(ann)).tolist())
        assert labels <= allowed and 4 in labels and 1 in labels  # floor and wall always visible
        assert labels & {c.ade_index for c in SCENE_CATEGORY_INFO.values()}
        depth = load_ground_truth_depth(root, "ade20k", image_id)
        assert depth.shape == (img.size[1], img.size[0]) and depth.min() > 0


def _load_coco(path):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_lvis_json_has_the_real_fields_and_loads_in_pycocotools(demo):
    root, m = demo
    any_not_exhaustive = False
    for split, folder in (("train", "train2017"), ("val", "val2017")):
        path = root / "lvis" / f"lvis_v1_{split}.json"
        doc = json.loads(path.read_text())
        assert set(doc) == {"info", "licenses", "images", "annotations", "categories"}
        assert {"description", "url", "version", "year", "contributor", "date_created"} <= set(doc["info"])
        for img in doc["images"]:
            assert set(img) == {"id", "coco_url", "height", "width", "license", "flickr_url", "date_captured",
                                "neg_category_ids", "not_exhaustive_category_ids"}
            assert re.fullmatch(rf"http://images\.cocodataset\.org/{folder}/{img['id']:012d}\.jpg", img["coco_url"])
            assert (root / "coco" / folder / f"{img['id']:012d}.jpg").is_file()
            assert [img["width"], img["height"]] == list(m.image_sizes["lvis"][str(img["id"])])
        for cat in doc["categories"]:
            assert set(cat) == {"id", "name", "synset", "synonyms", "def", "frequency", "image_count",
                                "instance_count"}
            assert cat["frequency"] in ("f", "c", "r")
        for ann in doc["annotations"]:
            assert set(ann) == {"id", "image_id", "category_id", "bbox", "area", "segmentation"}
        coco = _load_coco(path)
        assert len(coco.imgs) == m.image_counts["lvis"][split]
        assert len(coco.anns) == m.annotation_counts["lvis"][split]
        for img in doc["images"]:
            present = {a["category_id"] for a in coco.imgToAnns[img["id"]]}
            assert img["neg_category_ids"] and not present & set(img["neg_category_ids"])
            assert set(img["not_exhaustive_category_ids"]) <= present
            any_not_exhaustive |= bool(img["not_exhaustive_category_ids"])
        for ann in coco.anns.values():  # polygons rasterise back onto the box
            mask = coco.annToMask(ann)
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann["bbox"]
            assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
            assert abs(xs.max() + 1 - (x + w)) <= 1 and abs(ys.max() + 1 - (y + h)) <= 1
            assert 0.9 * ann["area"] <= mask.sum() <= 1.1 * ann["area"]
    assert any_not_exhaustive
    train = json.loads((root / "lvis" / "lvis_v1_train.json").read_text())
    counts = {c["id"]: c["instance_count"] for c in train["categories"]}
    for cid, n in counts.items():
        assert n == sum(a["category_id"] == cid for a in train["annotations"])


def test_refcoco_files_match_the_real_format(demo):
    root, m = demo
    inst_path = root / "refcoco" / "instances.json"
    doc = json.loads(inst_path.read_text())
    assert set(doc) == {"info", "images", "licenses", "annotations", "categories"}
    for img in doc["images"]:
        assert re.fullmatch(r"COCO_train2014_\d{12}\.jpg", img["file_name"])
        assert (root / "coco" / "train2014" / img["file_name"]).is_file()
    for ann in doc["annotations"]:
        assert set(ann) == {"id", "image_id", "category_id", "bbox", "area", "segmentation", "iscrowd"}
    assert {c["name"] for c in doc["categories"]} == {c.coco_name for c in SCENE_CATEGORY_INFO.values()}
    assert all("supercategory" in c for c in doc["categories"])
    coco = _load_coco(inst_path)

    raw = (root / "refcoco" / "refs(unc).p").read_bytes()
    assert raw[:2] == b"\x80\x02"  # pickle protocol 2, like the Python 2 original
    refs = load_restricted_pickle(root / "refcoco" / "refs(unc).p")
    assert len(refs) == m.n_refs
    splits = set()
    for ref in refs:
        assert set(ref) == {"image_id", "split", "sentences", "file_name", "ann_id", "ref_id",
                            "category_id", "sent_ids"}
        ann = coco.anns[ref["ann_id"]]
        assert ann["image_id"] == ref["image_id"] and ann["category_id"] == ref["category_id"]
        assert ref["file_name"] == f"COCO_train2014_{ref['image_id']:012d}_{ref['ann_id']}.jpg"
        assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]
        for s in ref["sentences"]:
            assert set(s) == {"tokens", "raw", "sent_id", "sent"}
            assert s["sent"] == " ".join(s["tokens"]) == s["sent"].lower()
            assert s["raw"].lower().rstrip(".") == s["sent"]
        noun_words = {w for c in SCENE_CATEGORY_INFO.values() for n in c.words for w in n.split()}
        assert any(w in noun_words for s in ref["sentences"] for w in s["tokens"])
        splits.add(ref["split"])
        assert m.image_splits["refcoco"][str(ref["image_id"])] == ref["split"]
    assert splits == {"train", "val", "testA", "testB"}


def test_refuses_to_overwrite_foreign_data_and_removes_stale_files(tmp_path):
    foreign = tmp_path / "real"
    (foreign / "coco").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_demo_datasets(foreign, n_ade20k=1, n_lvis=0, n_refcoco=0)
    root = tmp_path / "demo"
    write_demo_datasets(root, n_ade20k=3, n_lvis=2, n_refcoco=0, image_size=(64, 48))
    assert len(list((root / "coco" / "train2017").iterdir())) == 1
    m = write_demo_datasets(root, n_ade20k=1, n_lvis=0, n_refcoco=0, image_size=(64, 48))
    assert [p.name for p in (root / "ADEChallengeData2016" / "images" / "training").iterdir()] == [
        "ADE_train_00000001.jpg"
    ]
    assert not (root / "coco" / "train2017").exists() or not any((root / "coco" / "train2017").iterdir())
    assert m.image_counts["ade20k"] == {"training": 1, "validation": 0}
    assert not [p for p in root.iterdir() if p.name.startswith(".demo-")]
