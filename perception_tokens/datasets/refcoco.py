"""RefCOCO / RefCOCO+ / RefCOCOg reader: ``refs(<split_by>).p`` + ``instances.json`` + COCO
train2014 images, in the layout of the refer toolkit (github.com/lichengunc/refer, ``data/``):

    refcoco/refs(unc).p   refcoco/instances.json     (UNC splits: train, val, testA, testB)
    refcoco+/refs(unc).p  refcoco+/instances.json    (UNC splits: train, val, testA, testB)
    refcocog/refs(umd).p  refcocog/instances.json    (UMD splits: train, val, test; also refs(google).p)

The refs file is a Python 2 pickle; it is read with the restricted unpickler (no code
can run). Each ref names one COCO annotation (``ann_id``) and carries 1+ sentences; we
emit one row per sentence with the annotation's box and its mask as compressed RLE
(pycocotools, from the annotation's polygons or RLE; see :mod:`perception_tokens.masks`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from pycocotools.coco import COCO

from ..images import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS
from ..paths import UnsafePathError, UnusablePathError, file_kind, safe_join
from ..safe_pickle import PickleExpansionError, UnsafePickleError, load_restricted_pickle
from ..masks import MaskFormatError, segmentation_to_rle
from .coco_index import read_coco_instances
from .records import (
    DatasetFormatError,
    Reject,
    box_problem,
    int_problem,
    is_int,
    mapping_size,
    read_image_file,
    require_keys,
    size_problem,
)

__all__ = ["REFER_DATASETS", "RefcocoIndex", "read_refcoco", "read_refer_dataset", "iter_refcoco_images",
           "iter_refcoco_refs"]

# dataset name -> (folder under the refer data root, refs file of the split used): the splits
# the RES benchmarks report (UNC for RefCOCO/RefCOCO+, UMD for RefCOCOg, as LISA and Sa2VA do)
REFER_DATASETS = {
    "refcoco": ("refcoco", "refs(unc).p"),
    "refcoco+": ("refcoco+", "refs(unc).p"),
    "refcocog": ("refcocog", "refs(umd).p"),
}

IMAGE_STAGE = "refcoco_images"
REF_STAGE = "refcoco_refs"
UNREFERENCED_SPLIT = "unreferenced"
_IMAGE_KEYS = ("id", "file_name", "height", "width")
_ANN_KEYS = ("id", "image_id", "category_id", "bbox")
_REF_KEYS = ("ref_id", "ann_id", "image_id", "category_id", "split", "sentences")
_COCO_NAME_RE = re.compile(r"^COCO_([A-Za-z]+[0-9]{4})_[0-9]+\.(?:jpg|jpeg|png)$")


@dataclass
class RefcocoIndex:
    refs_path: Path
    instances_path: Path
    dataset: str  # "refcoco", "refcoco+" or "refcocog": the value of the rows' ``dataset``
    refs: list  # as unpickled (validated per ref while iterating)
    coco: COCO  # pycocotools index over the kept instances records
    images: list[dict]
    categories: dict[int, dict]
    image_split: dict[int, str]  # image id -> split of its refs (UNC splits are per image)
    image_rejects: list[Reject] = field(default_factory=list)
    annotation_rejects: list[Reject] = field(default_factory=list)


def read_refer_dataset(dataset_root: str | os.PathLike, dataset: str) -> RefcocoIndex:
    """``dataset`` (a key of :data:`REFER_DATASETS`) from its own folder: ``dataset_root`` holds
    its refs pickle and ``instances.json`` (e.g. ``refer/data/refcocog``)."""
    if dataset not in REFER_DATASETS:
        raise ValueError(f"unknown referring dataset {dataset!r}; expected one of {list(REFER_DATASETS)}")
    root = Path(dataset_root)
    return read_refcoco(root / REFER_DATASETS[dataset][1], root / "instances.json", dataset=dataset)


def read_refcoco(refs_pickle_path: str | os.PathLike, instances_json_path: str | os.PathLike,
                 dataset: str = "refcoco") -> RefcocoIndex:
    """Load ``refs(unc).p`` / ``refs(umd).p`` (restricted unpickler) and ``instances.json`` (pycocotools).

    Raises :class:`DatasetFormatError` naming the file when either is missing, malformed
    or (for the pickle) tries to reference code.
    """
    refs_path = Path(refs_pickle_path)
    inst_path = Path(instances_json_path)
    if not refs_path.is_file():
        raise DatasetFormatError(f"{refs_path}: refs pickle does not exist")
    try:
        refs = load_restricted_pickle(refs_path)
    except (UnsafePickleError, PickleExpansionError) as exc:  # messages already name the file
        raise DatasetFormatError(str(exc)) from exc
    except (ValueError, OSError) as exc:
        raise DatasetFormatError(f"{refs_path}: cannot load refs pickle: {exc}") from exc
    if not isinstance(refs, list):
        raise DatasetFormatError(f"{refs_path}: expected a list of refs, got {type(refs).__name__}")

    doc = read_coco_instances(inst_path, dataset=dataset, image_stage=IMAGE_STAGE, annotation_stage=REF_STAGE,
                              image_keys=_IMAGE_KEYS, annotation_keys=_ANN_KEYS, category_keys=("id", "name"))

    image_split: dict[int, str] = {}
    for ref in refs:
        if isinstance(ref, dict) and is_int(ref.get("image_id")) and isinstance(ref.get("split"), str):
            image_split.setdefault(ref["image_id"], ref["split"])
    return RefcocoIndex(
        refs_path=refs_path, instances_path=inst_path, dataset=dataset, refs=refs, coco=doc.coco, images=doc.images,
        categories=doc.categories, image_split=image_split, image_rejects=doc.image_rejects,
        annotation_rejects=doc.annotation_rejects,
    )


def image_relative_path(image_root: str | os.PathLike, file_name: str) -> str:
    """``file_name`` directly under ``image_root``, or under its COCO folder
    (``COCO_train2014_*.jpg`` -> ``train2014/COCO_train2014_*.jpg``) if that is where it is."""
    try:
        if file_kind(safe_join(image_root, file_name)) != "missing":
            return file_name
        m = _COCO_NAME_RE.match(file_name)
        if m:
            nested = f"{m.group(1)}/{file_name}"
            if file_kind(safe_join(image_root, nested)) != "missing":
                return nested
    except (UnsafePathError, UnusablePathError):
        pass  # read_image_file checks the name again and turns it into a reject
    return file_name


def iter_refcoco_images(
    index: RefcocoIndex, image_root: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> Iterator[dict | Reject]:
    """Stream image rows (or Rejects) for every image of ``instances.json``.

    ``image_root`` is the folder holding the ``COCO_train2014_*.jpg`` files (or its parent,
    holding ``train2014/``). Row ``split`` is the UNC split of the image's refs
    ("unreferenced" for an image no ref points at).
    """
    yield from index.image_rejects
    for img in index.images:
        image_id = str(img["id"])
        problem = size_problem(img["width"], img["height"])
        if problem is None and not isinstance(img["file_name"], str):
            problem = f"file_name {img['file_name']!r} is not a string"
        if problem is not None:
            yield Reject(index.dataset, IMAGE_STAGE, str(index.instances_path), image_id, problem)
            continue
        rel = image_relative_path(image_root, img["file_name"])
        got = read_image_file(
            image_root, rel, dataset=index.dataset, stage=IMAGE_STAGE, record_id=image_id,
            expected_size=(img["width"], img["height"]), max_pixels=max_pixels, max_bytes=max_bytes,
        )
        if isinstance(got, Reject):
            yield got
            continue
        yield {
            "dataset": index.dataset,
            "split": index.image_split.get(img["id"], UNREFERENCED_SPLIT),
            "image_id": image_id,
            **got,
        }


def _sentence_ids(ref: dict) -> list:
    sents = ref.get("sentences") if isinstance(ref, dict) else None
    if not isinstance(sents, list):
        return []
    return [s.get("sent_id") if isinstance(s, dict) else None for s in sents]


def _ref_target(ref: dict, index: RefcocoIndex, image_sizes: Mapping | None) -> tuple[dict, dict, tuple[int, int], dict] | str:
    """A well-formed ref's annotation, category, image size and mask RLE, or the reason it cannot be used."""
    ann = index.coco.anns.get(ref["ann_id"])
    if ann is None:
        return f"ref points to missing annotation {ref['ann_id']}"
    if ann["image_id"] != ref["image_id"]:
        return f"ref image_id {ref['image_id']} disagrees with annotation {ref['ann_id']} (image {ann['image_id']})"
    cat = index.categories.get(ref["category_id"])
    if cat is None:
        return f"unknown category id {ref['category_id']}"
    if ann["category_id"] != ref["category_id"]:
        return f"ref category {ref['category_id']} disagrees with annotation category {ann['category_id']}"
    img = index.coco.imgs.get(ref["image_id"])
    if image_sizes is not None:
        size = mapping_size(image_sizes, ref["image_id"])
    elif img is not None and size_problem(img["width"], img["height"]) is None:
        size = (img["width"], img["height"])
    else:
        size = None
    if size is None:
        return f"image {ref['image_id']} is not available (missing or rejected)"
    problem = box_problem(ann["bbox"], size[0], size[1])
    if problem is not None:
        return problem
    if "segmentation" not in ann:
        return f"annotation {ref['ann_id']} has no segmentation (the referred object's mask)"
    try:
        rle = segmentation_to_rle(ann["segmentation"], size[1], size[0])
    except MaskFormatError as exc:
        return f"annotation {ref['ann_id']} segmentation unusable: {exc}"
    return ann, cat, size, rle


def iter_refcoco_refs(index: RefcocoIndex, image_sizes: Mapping | None = None) -> Iterator[dict | Reject]:
    """Stream one row per referring sentence (or a Reject per sentence that cannot be used).

    ``image_sizes`` (image id -> (width, height), e.g. from the image rows) restricts
    rows to images that were actually read; None trusts ``instances.json``. Malformed or
    duplicated annotations in ``instances.json`` come first as Rejects.
    """
    yield from index.annotation_rejects
    refs_file = str(index.refs_path)
    seen_refs: set[int] = set()
    seen_sents: set = set()
    for pos, ref in enumerate(index.refs):
        ref_label = f"ref {ref.get('ref_id')}" if isinstance(ref, dict) and "ref_id" in ref else f"ref #{pos}"
        sent_ids = _sentence_ids(ref) or [None]

        def reject_all(reason: str) -> Iterator[Reject]:
            for sid in sent_ids:
                rid = ref_label if sid is None else f"{ref_label} sentence {sid}"
                yield Reject(index.dataset, REF_STAGE, refs_file, rid, reason)

        problem = require_keys(ref, _REF_KEYS)
        if problem is None:
            problems = [int_problem(k, ref[k]) for k in ("ref_id", "ann_id", "image_id", "category_id")]
            if not isinstance(ref["split"], str):
                problems.append(f"split {ref['split']!r} is not a string")
            if not isinstance(ref["sentences"], list):
                problems.append("sentences is not a list")
            problem = next((p for p in problems if p is not None), None)
        if problem is not None:
            yield from reject_all(f"malformed ref: {problem}")
            continue
        if not ref["sentences"]:
            yield from reject_all("ref has no sentences")
            continue
        if ref["ref_id"] in seen_refs:
            yield from reject_all(f"duplicate ref id {ref['ref_id']} (first kept)")
            continue
        seen_refs.add(ref["ref_id"])
        target = _ref_target(ref, index, image_sizes)
        if isinstance(target, str):
            yield from reject_all(target)
            continue
        ann, cat, size, rle = target
        x, y, w, h = (float(v) for v in ann["bbox"])
        for sent in ref["sentences"]:
            sid = sent.get("sent_id") if isinstance(sent, dict) else None
            rid = f"{ref_label} sentence {sid}"
            sproblem = require_keys(sent, ("sent_id",))
            text = None
            if sproblem is None:
                text = sent.get("sent", sent.get("raw"))
                sproblem = int_problem("sent_id", sid)
                if sproblem is None and (not isinstance(text, str) or not text.strip()):
                    sproblem = "sentence has no text"
                if sproblem is None and sid in seen_sents:
                    sproblem = f"duplicate sentence id {sid} (first kept)"
            if sproblem is not None:
                yield Reject(index.dataset, REF_STAGE, refs_file, rid, f"malformed sentence: {sproblem}"
                             if not sproblem.startswith("duplicate") else sproblem)
                continue
            seen_sents.add(sid)
            yield {
                "dataset": index.dataset,
                "split": ref["split"],
                "ref_id": ref["ref_id"],
                "ann_id": ref["ann_id"],
                "image_id": str(ref["image_id"]),
                "category_id": ref["category_id"],
                "category_name": cat["name"],
                "sentence_id": sid,
                "sentence": text,
                "bbox_x": x,
                "bbox_y": y,
                "bbox_w": w,
                "bbox_h": h,
                "image_width": size[0],
                "image_height": size[1],
                "mask_rle": rle,
            }
