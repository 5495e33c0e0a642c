"""The demo's RefCOCO, RefCOCO+ and RefCOCOg: COCO train2014 images and, as in the refer
toolkit's data/ folder, refcoco/{instances.json, refs(unc).p}, refcoco+/{instances.json,
refs(unc).p} and refcocog/{instances.json, refs(umd).p, refs(google).p}.

The three share the images and the annotations (polygons traced from the scenes' exact
object masks), as the real sets share COCO train2014; each has its own refs, expressions
and split. RefCOCO+ and RefCOCOg draw from their own random streams, so the RefCOCO files
are the same bytes whether or not the other two are written.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from ..paths import atomic_write_text
from .catalog import COCO_LICENSES, SCENE_CATEGORY_INFO
from .encoding import (
    coco_bbox, coco_image_record, coco_polygons, draw_scene, scene_rng, split_counts, write_file, write_scene,
)
from .expressions import referring_expressions, referring_expressions_g, referring_expressions_plus, tokenize
from .manifest import DemoManifest

_FIRST_REFCOCO_ANN_ID = 500_001


def write_refcoco(stage: Path, n: int, seed: int, image_size, coco_ids: list[int], manifest: DemoManifest, progress) -> None:
    # UNC splits are by image; testA/testB are people/objects in the real set, here just
    # two more held-out image groups.
    counts = split_counts(n, {"train": 0.7, "val": 0.1, "testA": 0.1, "testB": 0.1}, first="train")
    split_of_index = [s for s, k in counts.items() for _ in range(k)]
    images, anns, refs = [], [], []
    ann_id, ref_id = _FIRST_REFCOCO_ANN_ID, 0
    (stage / "coco" / "train2014").mkdir(parents=True, exist_ok=True)
    ref_counts = {s: 0 for s in counts}
    sent_counts = {s: 0 for s in counts}
    # RefCOCOg (UMD): its own image split, train/val/test; the Google split: train/val
    umd_counts = split_counts(n, {"train": 0.8, "val": 0.1, "test": 0.1}, first="train")
    umd_split_of_index = [s for s, k in umd_counts.items() for _ in range(k)]
    google_counts = split_counts(n, {"train": 0.9, "val": 0.1}, first="train")
    google_split_of_index = [s for s, k in google_counts.items() for _ in range(k)]
    more_refs: dict[str, list[dict]] = {"refcoco+": [], "refcocog_umd": [], "refcocog_google": []}
    sent_ids = {"refcoco": 0, "refcoco+": 0, "refcocog": 0}  # next sentence id of each dataset
    for index in range(n):
        split = split_of_index[index]
        rng, scene, (w, h) = draw_scene(seed, "refcoco", index, image_size)
        plus_rng, g_rng = scene_rng(seed, "refcoco+", index), scene_rng(seed, "refcocog", index)
        image_id = coco_ids[index]
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        write_scene(stage, "refcoco", stage / "coco" / "train2014" / file_name, image_id, scene)
        record = coco_image_record(rng, image_id, "train2014", w, h)
        record["file_name"] = file_name
        record["coco_url"] = f"http://mscoco.org/images/{image_id}"
        images.append({k: record[k] for k in ("license", "file_name", "coco_url", "height", "width",
                                              "date_captured", "flickr_url", "id")})
        for obj in scene.objects:
            info = SCENE_CATEGORY_INFO[obj.category]
            anns.append({
                "segmentation": coco_polygons(obj.mask),
                "area": float(obj.area),
                "iscrowd": 0,
                "image_id": image_id,
                "bbox": coco_bbox(obj.bbox_xywh),
                "category_id": info.coco_id,
                "id": ann_id,
            })
            sentences = _sentences(referring_expressions(obj, scene.objects, rng), sent_ids, "refcoco")
            refs.append(_ref_record(sentences, image_id, ann_id, ref_id, split, info.coco_id))
            plus_sents = _sentences(referring_expressions_plus(obj, scene.objects, plus_rng), sent_ids, "refcoco+")
            more_refs["refcoco+"].append(_ref_record(plus_sents, image_id, ann_id, ref_id, split, info.coco_id))
            g_sents = _sentences(referring_expressions_g(obj, scene.objects, g_rng), sent_ids, "refcocog")
            more_refs["refcocog_umd"].append(
                _ref_record(g_sents, image_id, ann_id, ref_id, umd_split_of_index[index], info.coco_id))
            more_refs["refcocog_google"].append(
                _ref_record(g_sents, image_id, ann_id, ref_id, google_split_of_index[index], info.coco_id))
            ref_counts[split] += 1
            sent_counts[split] += len(sentences)
            ann_id += 1
            ref_id += 1
        sid = str(image_id)
        manifest.image_ids["refcoco"].append(sid)
        manifest.image_splits["refcoco"][sid] = split
        manifest.image_sizes["refcoco"][sid] = (w, h)
        progress.update(1)

    categories = [{"supercategory": i.coco_supercategory, "id": i.coco_id, "name": i.coco_name}
                  for i in sorted(SCENE_CATEGORY_INFO.values(), key=lambda i: i.coco_id)]
    doc = {
        "info": {"description": "This is stable 1.0 version of the 2014 MS COCO dataset "
                                "(perception-tokens procedural demo data).",
                 "url": "http://mscoco.org", "version": "1.0", "year": 2014,
                 "contributor": "perception-tokens demo generator", "date_created": "2015-01-27 09:11:52.357475"},
        "images": images,
        "licenses": [dict(x) for x in COCO_LICENSES],
        "annotations": anns,
        "categories": categories,
    }
    instances = json.dumps(doc)
    # Protocol 2, like the Python 2 originals; plain dicts/lists/str/int only.
    for folder, refs_files in (("refcoco", {"refs(unc).p": refs}), ("refcoco+", {"refs(unc).p": more_refs["refcoco+"]}),
                               ("refcocog", {"refs(umd).p": more_refs["refcocog_umd"],
                                             "refs(google).p": more_refs["refcocog_google"]})):
        (stage / folder).mkdir(parents=True, exist_ok=True)
        atomic_write_text(stage / folder / "instances.json", instances, fsync=False)
        for name, records in refs_files.items():
            write_file(stage / folder / name, pickle.dumps(records, protocol=2))
    manifest.image_counts["refcoco"] = counts
    manifest.annotation_counts["refcoco"] = {"all": len(anns)}
    manifest.ref_counts = ref_counts
    manifest.sentence_counts = sent_counts
    manifest.refer_ref_counts = {
        "refcoco+": _count_by_split(more_refs["refcoco+"], counts),
        "refcocog": _count_by_split(more_refs["refcocog_umd"], umd_counts),
    }
    manifest.files.update({
        "refcoco_instances_json": "refcoco/instances.json",
        "refcoco_refs_pickle": "refcoco/refs(unc).p",
        "refcoco+_instances_json": "refcoco+/instances.json",
        "refcoco+_refs_pickle": "refcoco+/refs(unc).p",
        "refcocog_instances_json": "refcocog/instances.json",
        "refcocog_refs_pickle": "refcocog/refs(umd).p",
        "refcocog_google_refs_pickle": "refcocog/refs(google).p",
        "refcoco_image_root": "coco/train2014",
    })


def _ref_record(sentences: list[dict], image_id: int, ann_id: int, ref_id: int, split: str, category_id: int) -> dict:
    """One ref as the refer toolkit's pickles hold it (same keys, same order)."""
    return {
        "sent_ids": [s["sent_id"] for s in sentences],
        "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
        "ann_id": ann_id,
        "ref_id": ref_id,
        "image_id": image_id,
        "split": split,
        "sentences": sentences,
        "category_id": category_id,
    }


def _sentences(raws: list[str], next_ids: dict[str, int], dataset: str) -> list[dict]:
    out = []
    for raw in raws:
        tokens = tokenize(raw)
        out.append({"tokens": tokens, "raw": raw, "sent_id": next_ids[dataset], "sent": " ".join(tokens)})
        next_ids[dataset] += 1
    return out


def _count_by_split(refs: list[dict], splits: dict[str, int]) -> dict[str, int]:
    return {s: sum(r["split"] == s for r in refs) for s in splits}
