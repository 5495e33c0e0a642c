"""Dataset readers against the demo truth, and every reject / format-error case."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil

import pytest

from perception_tokens.datasets import (
    IMAGE_ROW_KEYS,
    DatasetFormatError,
    Reject,
    iter_ade20k_images,
    iter_lvis_images,
    iter_lvis_instances,
    iter_refcoco_images,
    iter_refcoco_refs,
    read_lvis_annotations,
    read_refcoco,
    split_rows,
)
from perception_tokens.demo import write_demo_datasets

LVIS_IMAGE_KEYS = IMAGE_ROW_KEYS + ("coco_url", "neg_category_ids", "neg_category_names",
                                    "not_exhaustive_category_ids")
LVIS_INSTANCE_KEYS = ("dataset", "split", "annotation_id", "image_id", "category_id", "category_name", "synset",
                      "frequency", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "area", "image_width",
                      "image_height", "category_exhaustive")
REF_KEYS = ("dataset", "split", "ref_id", "ann_id", "image_id", "category_id", "category_name", "sentence_id",
            "sentence", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "image_width", "image_height", "mask_rle")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_src")
    manifest = write_demo_datasets(root, n_ade20k=6, n_lvis=10, n_refcoco=8, image_size=(96, 72), seed=11)
    return root, manifest


@pytest.fixture
def copy(demo, tmp_path):
    """A private copy of the demo tree to corrupt."""
    root, manifest = demo
    dst = tmp_path / "copy"
    shutil.copytree(root, dst, ignore=shutil.ignore_patterns("demo_depth"))
    return dst, manifest


def _lvis(root, split="train"):
    index = read_lvis_annotations(root / "lvis" / f"lvis_v1_{split}.json")
    images, image_rejects = split_rows(iter_lvis_images(index, root / "coco", split))
    sizes = {r["image_id"]: (r["width"], r["height"]) for r in images}
    inst, inst_rejects = split_rows(iter_lvis_instances(index, split, sizes))
    return index, images, image_rejects, inst, inst_rejects


def _refcoco(root, image_root=None):
    index = read_refcoco(root / "refcoco" / "refs(unc).p", root / "refcoco" / "instances.json")
    images, image_rejects = split_rows(iter_refcoco_images(index, image_root or root / "coco" / "train2014"))
    sizes = {r["image_id"]: (r["width"], r["height"]) for r in images}
    refs, ref_rejects = split_rows(iter_refcoco_refs(index, sizes))
    return index, images, image_rejects, refs, ref_rejects


def _only(rejects: list[Reject]) -> Reject:
    assert len(rejects) == 1, rejects
    return rejects[0]


# ----------------------------------------------------------------------------- against the truth


def test_ade20k_rows_match_the_manifest(demo):
    root, m = demo
    base = root / "ADEChallengeData2016"
    rows, rejects = split_rows(iter_ade20k_images(base))
    assert rejects == []
    assert [r["image_id"] for r in rows] == m.image_ids["ade20k"]
    for r in rows:
        assert tuple(r)[: len(IMAGE_ROW_KEYS)] == IMAGE_ROW_KEYS and tuple(r)[-1] == "annotation_file"
        data = (base / r["file_name"]).read_bytes()
        assert r["image_bytes"] == data and r["sha256"] == hashlib.sha256(data).hexdigest()
        assert (r["width"], r["height"]) == tuple(m.image_sizes["ade20k"][r["image_id"]])
        assert r["split"] == m.image_splits["ade20k"][r["image_id"]] and r["format"] == "jpeg"
        assert r["annotation_file"] == f"annotations/{r['split']}/{r['image_id']}.png"
    only_val, _ = split_rows(iter_ade20k_images(base, splits=("validation",)))
    assert [r["image_id"] for r in only_val] == ["ADE_val_00000001"]
    none, bombs = split_rows(iter_ade20k_images(base, splits=("validation",), max_pixels=1000))
    assert none == [] and "decompression bomb" in _only(bombs).reason


def test_lvis_rows_match_the_manifest(demo):
    root, m = demo
    seen_ids = []
    any_not_exhaustive = False
    for split in ("train", "val"):
        index, images, image_rejects, inst, inst_rejects = _lvis(root, split)
        assert image_rejects == [] and inst_rejects == []
        assert len(images) == m.image_counts["lvis"][split]
        assert len(inst) == m.annotation_counts["lvis"][split]
        for r in images:
            assert tuple(r) == LVIS_IMAGE_KEYS
            assert r["file_name"] == "/".join(r["coco_url"].split("/")[-2:])
            assert r["sha256"] == hashlib.sha256((root / "coco" / r["file_name"]).read_bytes()).hexdigest()
            assert (r["width"], r["height"]) == tuple(m.image_sizes["lvis"][r["image_id"]])
            assert len(r["neg_category_names"]) == len(r["neg_category_ids"]) > 0
        for r in inst:
            assert tuple(r) == LVIS_INSTANCE_KEYS
            assert isinstance(r["image_id"], str) and r["split"] == split
            assert 0 <= r["bbox_x"] and r["bbox_x"] + r["bbox_w"] <= r["image_width"]
            any_not_exhaustive |= not r["category_exhaustive"]
        seen_ids += [r["image_id"] for r in images]
        trusting_json, none_rejected = split_rows(iter_lvis_instances(index, split))  # sizes from the JSON
        assert trusting_json == inst and none_rejected == []
    assert seen_ids == m.image_ids["lvis"]
    assert any_not_exhaustive


def test_refcoco_rows_match_the_manifest(demo):
    root, m = demo
    index, images, image_rejects, refs, ref_rejects = _refcoco(root)
    assert image_rejects == [] and ref_rejects == []
    assert [r["image_id"] for r in images] == m.image_ids["refcoco"]
    assert all(r["split"] == m.image_splits["refcoco"][r["image_id"]] for r in images)
    assert len(refs) == m.n_sentences and len({r["ref_id"] for r in refs}) == m.n_refs
    assert all(tuple(r) == REF_KEYS for r in refs)
    by_split = {}
    for r in refs:
        by_split[r["split"]] = by_split.get(r["split"], 0) + 1
    assert by_split == m.sentence_counts
    # the parent folder works too (file found under train2014/)
    _, images2, rej2, _, _ = _refcoco(root, image_root=root / "coco")
    assert rej2 == [] and images2[0]["file_name"].startswith("train2014/COCO_train2014_")


# ----------------------------------------------------------------------------- ADE20K rejects


def test_ade20k_rejects_bad_files(copy, tmp_path):
    root, m = copy
    base = root / "ADEChallengeData2016"
    train = base / "images" / "training"
    first = sorted(train.iterdir())[0]
    first.write_bytes(first.read_bytes()[:-200])  # truncated JPEG
    (train / "ADE_train_00000099.jpg").write_text("not really an image")
    (train / "notes.txt").write_text("hello")
    outside = tmp_path / "outside.jpg"
    shutil.copy(sorted(train.iterdir())[1], outside)
    (train / "ADE_train_00000098.jpg").symlink_to(outside)
    rows, rejects = split_rows(iter_ade20k_images(base))
    reasons = {r.record_id: r.reason for r in rejects}
    assert "truncated image" in reasons[first.stem]
    assert "not an image" in reasons["ADE_train_00000099"]
    assert "not an image file name" in reasons["notes"]
    assert "escapes" in reasons["ADE_train_00000098"]
    assert all(r.stage == "ade20k_images" and r.dataset == "ade20k" for r in rejects)
    assert len(rows) + len(rejects) == 6 + 3  # every file accounted for
    with pytest.raises(DatasetFormatError, match="ADEChallengeData2016"):
        list(iter_ade20k_images(root))
    with pytest.raises(DatasetFormatError, match="images/testing"):
        list(iter_ade20k_images(base, splits=("testing",)))


def test_ade20k_rejects_a_fifo_or_folder_in_place_of_an_image_or_its_mask(copy):
    """Issue 21.2: a non-regular file is never opened; before the fix a FIFO or folder under a
    mask's name made the image a row without annotation, silently."""
    root, m = copy
    base = root / "ADEChallengeData2016"
    images = sorted((base / "images" / "training").iterdir())
    mask = base / "annotations" / "training" / f"{images[0].stem}.png"
    mask.unlink()
    os.mkfifo(mask)
    os.mkfifo(base / "images" / "training" / "ADE_train_fifo.jpg")
    rows, rejects = split_rows(iter_ade20k_images(base))
    assert {r.record_id: r.reason for r in rejects} == {
        images[0].stem: "annotation path is not a regular file (FIFO)",
        "ADE_train_fifo": "image path is not a regular file",
    }
    assert len(rows) + len(rejects) == 6 + 1


# ----------------------------------------------------------------------------- LVIS rejects


def _edit_json(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_lvis_rejects_each_bad_record(copy):
    root, m = copy
    path = root / "lvis" / "lvis_v1_train.json"
    doc = json.loads(path.read_text())
    imgs, anns = doc["images"], doc["annotations"]
    n_images, n_anns = len(imgs), len(anns)

    missing_img = imgs[0]
    (root / "coco" / "train2017" / f"{missing_img['id']:012d}.jpg").unlink()
    corrupt = imgs[1]
    (root / "coco" / "train2017" / f"{corrupt['id']:012d}.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    imgs[2]["coco_url"] = "http://images.cocodataset.org/../secret.jpg"
    imgs[3]["width"] = 0
    imgs[4]["height"] = imgs[4]["height"] + 5  # disagrees with the file
    imgs.append(dict(imgs[5]))  # duplicate image id
    ok_image = imgs[6]["id"]
    ok_anns = [a for a in anns if a["image_id"] == ok_image]
    assert len(ok_anns) >= 2
    ok_anns[0]["bbox"] = [90.0, 10.0, 50.0, 5.0]  # runs off a 96-px-wide image
    ok_anns[1]["category_id"] = 999_999
    anns.append(dict(ok_anns[-1]))  # duplicate annotation id
    dup_ann_id = ok_anns[-1]["id"]
    zero = next(a for a in anns if a["image_id"] == imgs[7]["id"])
    zero["bbox"] = [1.0, 1.0, 0.0, 4.0]
    path.write_text(json.dumps(doc))

    index, images, image_rejects, inst, inst_rejects = _lvis(root)
    by_id = {r.record_id: r.reason for r in image_rejects}
    assert by_id[str(missing_img["id"])] == "missing image file"
    assert "bad image" in by_id[str(corrupt["id"])]
    assert "escapes" in by_id[str(imgs[2]["id"])]
    assert "non-positive width/height" in by_id[str(imgs[3]["id"])]
    assert "annotation says" in by_id[str(imgs[4]["id"])]
    assert "duplicate image id" in by_id[str(imgs[5]["id"])]
    assert len(images) + len(image_rejects) == n_images + 1
    assert str(imgs[5]["id"]) in {r["image_id"] for r in images}  # first copy kept

    ann_reasons = {}
    for r in inst_rejects:
        ann_reasons.setdefault(r.record_id, []).append(r.reason)
    assert any("outside" in x for x in ann_reasons[str(ok_anns[0]["id"])])
    assert any("unknown category id 999999" in x for x in ann_reasons[str(ok_anns[1]["id"])])
    assert any("duplicate annotation id" in x for x in ann_reasons[str(dup_ann_id)])
    assert any("non-positive box size" in x for x in ann_reasons[str(zero["id"])])
    rejected_images = {str(i["id"]) for i in (missing_img, corrupt, imgs[2], imgs[3], imgs[4])}
    for a in anns[:n_anns]:
        if str(a["image_id"]) in rejected_images:
            assert any("not available" in x for x in ann_reasons[str(a["id"])])
    assert len(inst) + len(inst_rejects) == n_anns + 1
    assert all(r.stage == "lvis_instances" for r in inst_rejects)
    assert all(r.stage == "lvis_images" for r in image_rejects)


def test_lvis_unusable_files_raise_format_errors(copy):
    root, _ = copy
    missing = root / "lvis" / "nope.json"
    with pytest.raises(DatasetFormatError, match="nope.json: annotation file does not exist"):
        read_lvis_annotations(missing)
    path = root / "lvis" / "lvis_v1_val.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(DatasetFormatError, match=r"lvis_v1_val\.json: malformed JSON at line 1 column \d+"):
        read_lvis_annotations(path)
    path.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(DatasetFormatError, match=r"missing top-level key\(s\) \['categories'\]"):
        read_lvis_annotations(path)
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "x"}]}))
    with pytest.raises(DatasetFormatError, match=r"categories\[0\]: missing key\(s\) \['synset', 'frequency'\]"):
        read_lvis_annotations(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(DatasetFormatError, match="top level must be a JSON object"):
        read_lvis_annotations(path)


def test_lvis_malformed_records_become_rejects(copy):
    root, _ = copy
    path = root / "lvis" / "lvis_v1_val.json"

    def damage(doc):
        del doc["images"][0]["coco_url"]
        doc["annotations"][0]["image_id"] = [1, 2]  # unhashable: must not reach pycocotools

    _edit_json(path, damage)
    index, images, image_rejects, inst, inst_rejects = _lvis(root, "val")
    assert "missing key(s) ['coco_url']" in image_rejects[0].reason
    assert "image_id [1, 2] is not an integer" in inst_rejects[0].reason


# ----------------------------------------------------------------------------- RefCOCO rejects


def test_refcoco_rejects_bad_refs_and_images(copy):
    root, m = copy
    refs_path = root / "refcoco" / "refs(unc).p"
    with open(refs_path, "rb") as fh:
        refs = pickle.load(fh)  # our own freshly written test file, not untrusted input
    n_sent = sum(len(r["sentences"]) for r in refs)
    refs[0]["ann_id"] = 987_654_321  # points to a missing annotation
    refs[1]["category_id"] = 4242
    refs.append(dict(refs[2]))  # duplicate ref id
    len_dup, len_emptied = len(refs[2]["sentences"]), len(refs[3]["sentences"])
    refs[3]["sentences"] = []
    refs_path.write_bytes(pickle.dumps(refs, protocol=2))
    doc = json.loads((root / "refcoco" / "instances.json").read_text())
    gone = doc["images"][-1]
    (root / "coco" / "train2014" / gone["file_name"]).unlink()

    index, images, image_rejects, rows, rejects = _refcoco(root)
    assert _only(image_rejects).reason == "missing image file"
    reasons = [r.reason for r in rejects]
    assert sum("missing annotation 987654321" in x for x in reasons) == len(refs[0]["sentences"])
    assert any("unknown category id 4242" in x for x in reasons)
    assert any("duplicate ref id" in x for x in reasons)
    assert any(x == "ref has no sentences" for x in reasons)
    gone_refs = [r for r in refs[:-1] if r["image_id"] == gone["id"] and r["sentences"]]
    assert sum("not available" in x for x in reasons) == sum(len(r["sentences"]) for r in gone_refs)
    assert all(r.stage == "refcoco_refs" and r.file == str(refs_path) for r in rejects)
    # every input sentence is a row or a reject (the emptied ref yields one reject)
    assert len(rows) + len(rejects) == n_sent - len_emptied + 1 + len_dup


def test_refcoco_refuses_malicious_pickle(copy):
    root, _ = copy
    marker = root / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (root / "refcoco" / "refs(unc).p").write_bytes(pickle.dumps([{"ref_id": 1}, Evil()], protocol=2))
    with pytest.raises(DatasetFormatError, match=r"refs\(unc\)\.p: refused to unpickle global 'posix.system'"):
        read_refcoco(root / "refcoco" / "refs(unc).p", root / "refcoco" / "instances.json")
    assert not marker.exists()
    (root / "refcoco" / "refs(unc).p").write_bytes(pickle.dumps({"not": "a list"}, protocol=2))
    with pytest.raises(DatasetFormatError, match="expected a list of refs"):
        read_refcoco(root / "refcoco" / "refs(unc).p", root / "refcoco" / "instances.json")
    (root / "refcoco" / "refs(unc).p").write_bytes(pickle.dumps([], protocol=2))
    with pytest.raises(DatasetFormatError, match="instances_missing.json: annotation file does not exist"):
        read_refcoco(root / "refcoco" / "refs(unc).p", root / "refcoco" / "instances_missing.json")
