"""The demo's RefCOCO (UNC): COCO train2014 images, instances.json and refs(unc).p."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from ..paths import atomic_write_text
from .catalog import COCO_LICENSES, SCENE_CATEGORY_INFO
from .encoding import coco_bbox, coco_image_record, coco_polygons, draw_scene, split_counts, write_file, write_scene
from .expressions import referring_expressions, tokenize
from .manifest import DemoManifest

_FIRST_REFCOCO_ANN_ID = 500_001


def write_refcoco(stage: Path, n: int, seed: int, image_size, coco_ids: list[int], manifest: DemoManifest, progress) -> None:
    # UNC splits are by image; testA/testB are people/objects in the real set, here just
    # two more held-out image groups.
    counts = split_counts(n, {"train": 0.7, "val": 0.1, "testA": 0.1, "testB": 0.1}, first="train")
    split_of_index = [s for s, k in counts.items() for _ in range(k)]
    images, anns, refs = [], [], []
    ann_id, ref_id, sent_id = _FIRST_REFCOCO_ANN_ID, 0, 0
    (stage / "coco" / "train2014").mkdir(parents=True, exist_ok=True)
    ref_counts = {s: 0 for s in counts}
    sent_counts = {s: 0 for s in counts}
    for index in range(n):
        split = split_of_index[index]
        rng, scene, (w, h) = draw_scene(seed, "refcoco", index, image_size)
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
            sentences = []
            for raw in referring_expressions(obj, scene.objects, rng):
                tokens = tokenize(raw)
                sentences.append({"tokens": tokens, "raw": raw, "sent_id": sent_id, "sent": " ".join(tokens)})
                sent_id += 1
            refs.append({
                "sent_ids": [s["sent_id"] for s in sentences],
                "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                "ann_id": ann_id,
                "ref_id": ref_id,
                "image_id": image_id,
                "split": split,
                "sentences": sentences,
                "category_id": info.coco_id,
            })
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
    (stage / "refcoco").mkdir(parents=True, exist_ok=True)
    atomic_write_text(stage / "refcoco" / "instances.json", json.dumps(doc), fsync=False)
    # Protocol 2, like the Python 2 original; plain dicts/lists/str/int only.
    write_file(stage / "refcoco" / "refs(unc).p", pickle.dumps(refs, protocol=2))
    manifest.image_counts["refcoco"] = counts
    manifest.annotation_counts["refcoco"] = {"all": len(anns)}
    manifest.ref_counts = ref_counts
    manifest.sentence_counts = sent_counts
    manifest.files.update({
        "refcoco_instances_json": "refcoco/instances.json",
        "refcoco_refs_pickle": "refcoco/refs(unc).p",
        "refcoco_image_root": "coco/train2014",
    })
