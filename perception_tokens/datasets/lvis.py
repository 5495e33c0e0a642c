"""LVIS v1 reader: ``lvis_v1_{train,val}.json`` plus COCO-2017 images.

LVIS images carry no ``file_name``; the file is found from the last two components of
``coco_url`` (``http://images.cocodataset.org/train2017/000000000139.jpg`` ->
``train2017/000000000139.jpg``) under the COCO image root, as the LVIS API does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from pycocotools.coco import COCO

from ..images import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS
from .coco_index import read_coco_instances
from .records import (
    Reject,
    box_problem,
    finite_number,
    is_int,
    mapping_size,
    read_image_file,
    size_problem,
)

__all__ = ["LvisIndex", "read_lvis_annotations", "iter_lvis_images", "iter_lvis_instances"]

IMAGE_STAGE = "lvis_images"
INSTANCE_STAGE = "lvis_instances"
_IMAGE_KEYS = ("id", "coco_url", "height", "width", "neg_category_ids", "not_exhaustive_category_ids")
_ANN_KEYS = ("id", "image_id", "category_id", "bbox", "area")
_CATEGORY_KEYS = ("id", "name", "synset", "frequency")


@dataclass
class LvisIndex:
    """A validated LVIS annotation file."""

    path: Path
    coco: COCO  # pycocotools index over the kept records (imgs, anns, cats, imgToAnns)
    images: list[dict]  # kept image records, file order
    annotations: list[dict]  # kept annotation records, file order
    categories: dict[int, dict]
    image_rejects: list[Reject] = field(default_factory=list)  # duplicates / malformed images
    annotation_rejects: list[Reject] = field(default_factory=list)

    @property
    def info(self) -> dict:
        return self.coco.dataset.get("info", {})


def read_lvis_annotations(json_path: str | os.PathLike) -> LvisIndex:
    """Load and validate an LVIS v1 annotation file.

    A missing file, malformed JSON, missing top-level lists or a bad category table
    raise :class:`DatasetFormatError` naming the file. Malformed or duplicated image and
    annotation records are kept aside as Rejects (first occurrence of an id wins) and
    come out of :func:`iter_lvis_images` / :func:`iter_lvis_instances`.
    """
    path = Path(json_path)
    doc = read_coco_instances(path, dataset="lvis", image_stage=IMAGE_STAGE, annotation_stage=INSTANCE_STAGE,
                              image_keys=_IMAGE_KEYS, annotation_keys=_ANN_KEYS, category_keys=_CATEGORY_KEYS)
    return LvisIndex(
        path=path, coco=doc.coco, images=doc.images, annotations=doc.annotations, categories=doc.categories,
        image_rejects=doc.image_rejects, annotation_rejects=doc.annotation_rejects,
    )


def _id_list_problem(value, name: str, categories: Mapping[int, dict]) -> str | None:
    if not isinstance(value, list) or not all(is_int(v) for v in value):
        return f"{name} {value!r} is not a list of integers"
    unknown = [v for v in value if v not in categories]
    if unknown:
        return f"unknown category id {unknown[0]} in {name}"
    return None


def image_relative_path(coco_url) -> str | None:
    """``.../train2017/000000000139.jpg`` -> ``train2017/000000000139.jpg`` (None if malformed)."""
    if not isinstance(coco_url, str):
        return None
    parts = [p for p in coco_url.split("/") if p]
    if len(parts) < 2:
        return None
    return "/".join(parts[-2:])


def iter_lvis_images(
    index: LvisIndex, image_root: str | os.PathLike, split: str, *, max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> Iterator[dict | Reject]:
    """Stream LVIS image rows (or Rejects). ``image_root`` holds ``train2017/`` and ``val2017/``.

    Extra row keys: coco_url, neg_category_ids, neg_category_names, not_exhaustive_category_ids.
    """
    yield from index.image_rejects
    for img in index.images:
        image_id = str(img["id"])

        def reject(reason: str, file: str = str(index.path)) -> Reject:
            return Reject("lvis", IMAGE_STAGE, file, image_id, reason)

        problem = size_problem(img["width"], img["height"])
        if problem is None:
            problem = _id_list_problem(img["neg_category_ids"], "neg_category_ids", index.categories)
        if problem is None:
            problem = _id_list_problem(
                img["not_exhaustive_category_ids"], "not_exhaustive_category_ids", index.categories
            )
        rel = image_relative_path(img["coco_url"])
        if problem is None and rel is None:
            problem = f"coco_url {img['coco_url']!r} does not name <folder>/<file>"
        if problem is not None:
            yield reject(problem)
            continue
        got = read_image_file(
            image_root, rel, dataset="lvis", stage=IMAGE_STAGE, record_id=image_id,
            expected_size=(img["width"], img["height"]), max_pixels=max_pixels, max_bytes=max_bytes,
        )
        if isinstance(got, Reject):
            yield got
            continue
        neg = list(img["neg_category_ids"])
        yield {
            "dataset": "lvis",
            "split": split,
            "image_id": image_id,
            **got,
            "coco_url": img["coco_url"],
            "neg_category_ids": neg,
            "neg_category_names": [index.categories[c]["name"] for c in neg],
            "not_exhaustive_category_ids": list(img["not_exhaustive_category_ids"]),
        }


def iter_lvis_instances(
    index: LvisIndex, split: str, image_sizes: Mapping | None = None
) -> Iterator[dict | Reject]:
    """Stream one row per annotation (or a Reject).

    ``image_sizes`` maps image id (str or int) -> (width, height) of the images actually
    read (e.g. from :func:`iter_lvis_images` rows); annotations of images not in it are
    rejected so instance rows never point at an image that failed. Pass None to trust
    the sizes in the JSON.
    """
    yield from index.annotation_rejects
    file = str(index.path)
    for ann in index.annotations:
        ann_id = str(ann["id"])

        def reject(reason: str) -> Reject:
            return Reject("lvis", INSTANCE_STAGE, file, ann_id, reason)

        image_id = ann["image_id"]
        img = index.coco.imgs.get(image_id)
        if img is None:
            yield reject(f"annotation refers to unknown image id {image_id!r}")
            continue
        if image_sizes is None:
            size = (img["width"], img["height"]) if size_problem(img["width"], img["height"]) is None else None
        else:
            size = mapping_size(image_sizes, image_id)
        if size is None:
            yield reject(f"image {image_id} is not available (missing or rejected)")
            continue
        cat = index.categories.get(ann["category_id"])
        if cat is None:
            yield reject(f"unknown category id {ann['category_id']!r}")
            continue
        problem = box_problem(ann["bbox"], size[0], size[1])
        area = finite_number(ann["area"])
        if problem is None and (area is None or area < 0):
            # NaN passes a plain type check; the table must not hold it silently.
            problem = f"area {ann['area']!r} is not a finite number >= 0"
        if problem is not None:
            yield reject(problem)
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        not_exhaustive = img.get("not_exhaustive_category_ids") or []
        yield {
            "dataset": "lvis",
            "split": split,
            "annotation_id": int(ann["id"]),
            "image_id": str(image_id),
            "category_id": int(ann["category_id"]),
            "category_name": cat["name"],
            "synset": cat["synset"],
            "frequency": cat["frequency"],
            "bbox_x": x,
            "bbox_y": y,
            "bbox_w": w,
            "bbox_h": h,
            "area": area,
            "image_width": size[0],
            "image_height": size[1],
            "category_exhaustive": ann["category_id"] not in not_exhaustive,
        }

