"""The demo's LVIS v1: COCO 2017 images and lvis_v1_{train,val}.json, with negative and
not-exhaustive category lists that tell the truth about each scene."""

from __future__ import annotations

import json
from pathlib import Path

from ..paths import atomic_write_text
from .catalog import COCO_LICENSES, LVIS_EXTRA_CATEGORIES, SCENE_CATEGORY_INFO
from .encoding import coco_bbox, coco_image_record, coco_polygons, draw_scene, split_counts, write_scene
from .manifest import DemoManifest

_FIRST_LVIS_ANN_ID = 1


def _lvis_categories(train_anns: list[dict]) -> list[dict]:
    image_sets: dict[int, set] = {}
    instance_counts: dict[int, int] = {}
    for a in train_anns:
        image_sets.setdefault(a["category_id"], set()).add(a["image_id"])
        instance_counts[a["category_id"]] = instance_counts.get(a["category_id"], 0) + 1
    cats = []
    for info in SCENE_CATEGORY_INFO.values():
        cats.append({"synset": info.synset, "synonyms": list(info.synonyms), "def": info.definition,
                     "name": info.lvis_name, "id": info.lvis_id, "frequency": info.frequency})
    for extra in LVIS_EXTRA_CATEGORIES:
        cats.append({"synset": extra["synset"], "synonyms": list(extra["synonyms"]), "def": extra["def"],
                     "name": extra["name"], "id": extra["id"], "frequency": extra["frequency"]})
    for c in cats:
        c["image_count"] = len(image_sets.get(c["id"], ()))
        c["instance_count"] = instance_counts.get(c["id"], 0)
    return sorted(cats, key=lambda c: c["id"])



def write_lvis(stage: Path, n: int, seed: int, image_size, coco_ids: list[int], manifest: DemoManifest, progress) -> None:
    counts = split_counts(n, {"train": 0.8, "val": 0.2}, first="train")
    all_cat_ids = [c.lvis_id for c in SCENE_CATEGORY_INFO.values()] + [e["id"] for e in LVIS_EXTRA_CATEGORIES]
    per_split: dict[str, tuple[list, list]] = {}
    ann_id = _FIRST_LVIS_ANN_ID
    index = 0
    for split, folder in (("train", "train2017"), ("val", "val2017")):
        images, anns = [], []
        (stage / "coco" / folder).mkdir(parents=True, exist_ok=True)
        for _ in range(counts[split]):
            rng, scene, (w, h) = draw_scene(seed, "lvis", index, image_size)
            image_id = coco_ids[index]
            write_scene(stage, "lvis", stage / "coco" / folder / f"{image_id:012d}.jpg", image_id, scene)

            present = sorted({SCENE_CATEGORY_INFO[o.category].lvis_id for o in scene.objects})
            drop_index = None
            not_exhaustive: list[int] = []
            if present and rng.random() < 0.3:
                # LVIS marks a category "not exhaustive" when some of its instances are not
                # annotated; mimic that truthfully by leaving one instance out if there are two.
                cat = present[int(rng.integers(len(present)))]
                not_exhaustive = [cat]
                same = [o.object_index for o in scene.objects
                        if SCENE_CATEGORY_INFO[o.category].lvis_id == cat]
                if len(same) >= 2:
                    drop_index = same[-1]
            absent = [c for c in all_cat_ids if c not in present]
            k = int(rng.integers(1, min(4, len(absent)) + 1))
            negatives = sorted(int(c) for c in rng.choice(absent, size=k, replace=False))

            record = coco_image_record(rng, image_id, folder, w, h)
            record["neg_category_ids"] = negatives
            record["not_exhaustive_category_ids"] = not_exhaustive
            images.append(record)
            for obj in scene.objects:
                if obj.object_index == drop_index:
                    continue
                anns.append({
                    "area": float(obj.area),
                    "id": ann_id,
                    "segmentation": coco_polygons(obj.mask),
                    "image_id": image_id,
                    "bbox": coco_bbox(obj.bbox_xywh),
                    "category_id": SCENE_CATEGORY_INFO[obj.category].lvis_id,
                })
                ann_id += 1
            sid = str(image_id)
            manifest.image_ids["lvis"].append(sid)
            manifest.image_splits["lvis"][sid] = split
            manifest.image_sizes["lvis"][sid] = (w, h)
            index += 1
            progress.update(1)
        per_split[split] = (images, anns)

    categories = _lvis_categories(per_split["train"][1])
    for split, (images, anns) in per_split.items():
        doc = {
            "info": {
                "description": "LVIS v1 format, perception-tokens procedural demo data",
                "url": "https://www.lvisdataset.org",
                "version": "1.0",
                "year": 2020,
                "contributor": "perception-tokens demo generator",
                "date_created": "2020-01-28 00:00:00.000000",
            },
            "licenses": [dict(x) for x in COCO_LICENSES],
            "images": images,
            "annotations": anns,
            "categories": categories,
        }
        path = stage / "lvis" / f"lvis_v1_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(doc), fsync=False)
        manifest.annotation_counts.setdefault("lvis", {})[split] = len(anns)
        manifest.files[f"lvis_{split}_json"] = f"lvis/lvis_v1_{split}.json"
    manifest.image_counts["lvis"] = counts
    manifest.files["lvis_image_root"] = "coco"
