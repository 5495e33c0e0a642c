"""COCO-format instance files (LVIS v1, RefCOCO's instances.json): validated, de-duplicated,
then indexed with ``pycocotools.coco.COCO``."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pycocotools.coco import COCO

from .records import Reject, check_category_table, dedupe_by_id, load_json_document

__all__ = ["CocoInstances", "build_coco_index", "read_coco_instances"]


def build_coco_index(dataset: dict) -> COCO:
    """A COCO object over ``dataset`` (dict with images/annotations/categories).

    We load the JSON ourselves (for precise error messages and de-duplication) and hand
    the result to pycocotools, whose ``createIndex`` prints progress: silenced here.
    """
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


@dataclass(frozen=True)
class CocoInstances:
    """The kept records of one instance file, their pycocotools index, and what was set aside."""

    coco: COCO
    images: list[dict]  # file order
    annotations: list[dict]  # file order
    categories: dict[int, dict]
    image_rejects: list[Reject]  # duplicates / malformed records (first occurrence of an id wins)
    annotation_rejects: list[Reject]


def read_coco_instances(
    path: str | os.PathLike,
    *,
    dataset: str,
    image_stage: str,
    annotation_stage: str,
    image_keys: Iterable[str],
    annotation_keys: Iterable[str],
    category_keys: Iterable[str],
) -> CocoInstances:
    """Read a COCO-format file: a missing file, malformed JSON, missing top-level lists or a
    bad category table raise :class:`DatasetFormatError` naming the file; malformed or
    duplicated image and annotation records become Rejects of ``image_stage`` /
    ``annotation_stage``."""
    path = Path(path)
    doc = load_json_document(path, ("images", "annotations", "categories"))
    categories = check_category_table(doc["categories"], path, category_keys)
    images, image_rejects = dedupe_by_id(
        doc["images"], dataset=dataset, stage=image_stage, file=str(path), kind="image", required=image_keys
    )
    annotations, annotation_rejects = dedupe_by_id(
        doc["annotations"], dataset=dataset, stage=annotation_stage, file=str(path), kind="annotation",
        required=annotation_keys, int_fields=("image_id", "category_id"),
    )
    document = {k: v for k, v in doc.items() if k not in ("images", "annotations", "categories")}
    document.update(images=images, annotations=annotations, categories=list(categories.values()))
    return CocoInstances(build_coco_index(document), images, annotations, categories, image_rejects, annotation_rejects)
