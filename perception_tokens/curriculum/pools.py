"""Task pools from the pipeline's tables: rows in, ``Sample`` objects (and skip reasons) out.

Plain dict rows (as read from Parquet) keep this module free of storage and Dagster; the
curriculum asset joins the tables and calls these functions. Image files are named
relative to the exported image folder: ``<dataset>/<image_id>.<ext>`` for source images,
``marked/<marked_id>.png`` for marked-point images.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from perception_tokens.curriculum.sample import Sample, SkipSample
from perception_tokens.curriculum import tasks
from perception_tokens.markers import MarkedPoint
from perception_tokens.vocab import GridBox

IMAGE_EXT = {"jpeg": "jpg", "png": "png"}


def source_image_file(dataset: str, image_id: str, fmt: str = "jpeg") -> str:
    return f"{dataset}/{image_id}.{IMAGE_EXT.get(fmt, fmt)}"


def marked_image_file(marked_id: str) -> str:
    # aurora-style marked images are JPEG, as add_marks_ade.ipynb saves them; the project's are PNG
    ext = "jpg" if marked_id.rsplit(":", 1)[-1].startswith("aurora") else "png"
    return f"marked/{marked_id.replace(':', '_')}.{ext}"


@dataclass
class Pools:
    samples: dict[str, list[Sample]] = field(default_factory=lambda: defaultdict(list))
    skipped: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def add(self, task: str, build) -> None:
        try:
            self.samples[task].append(build())
        except SkipSample as exc:
            reason = str(exc).split(":")[0][:80]
            self.skipped[task][reason] += 1

    @property
    def atomic(self) -> list[Sample]:
        return [s for t in sorted(self.samples) for s in self.samples[t] if s.kind == "atomic"]

    @property
    def reasoning(self) -> list[Sample]:
        return [s for t in sorted(self.samples) for s in self.samples[t] if s.kind != "atomic"]

    def keep_only(self, tasks) -> None:
        """Drop the pools of tasks not asked for (the curriculum's ``tasks`` setting)."""
        for task in list(self.samples):
            if task not in tasks:
                del self.samples[task]

    def counts(self) -> dict[str, int]:
        return {t: len(v) for t, v in sorted(self.samples.items())}


def add_depth_tasks(pools: Pools, depth_rows: Iterable[Mapping[str, Any]], image_formats: Mapping[tuple[str, str], str]) -> None:
    """depth_atomic for every image with depth tokens."""
    for r in depth_rows:
        key = (r["dataset"], r["image_id"])
        if key not in image_formats:
            continue
        pools.add("depth_atomic", lambda: tasks.build_depth_atomic(
            dataset=r["dataset"], image_id=r["image_id"], image_file=source_image_file(*key, image_formats[key]),
            codes=list(r["codes"]), depth_token_version=r["vqvae_version"]))


def marked_points_of(row: Mapping[str, Any]) -> list[MarkedPoint]:
    return [MarkedPoint(letter=l, x=int(x), y=int(y), depth_value=int(d))
            for l, x, y, d in zip(row["letters"], row["xs"], row["ys"], row["depth_values"])]


def add_marked_tasks(pools: Pools, marked_rows: Iterable[Mapping[str, Any]], codes_by_image: Mapping[tuple[str, str], tuple[list[int], str]],
                     *, bottleneck: bool = False) -> None:
    """depth_cot and depth_direct on every marked image whose source image has depth tokens."""
    for m in marked_rows:
        key = (m["dataset"], m["image_id"])
        points = marked_points_of(m)
        file = marked_image_file(m["marked_id"])
        if key not in codes_by_image:
            pools.skipped["depth_cot"]["no depth tokens for the image"] += 1
            continue
        codes, version = codes_by_image[key]
        pools.add("depth_cot", lambda: tasks.build_depth_cot(
            dataset=m["dataset"], image_id=m["image_id"], image_file=file, points=points, codes=codes,
            depth_token_version=version, bottleneck=bottleneck))
        pools.add("depth_direct", lambda: tasks.build_depth_direct(
            dataset=m["dataset"], image_id=m["image_id"], image_file=file, points=points))


UNUSABLE_BOX = "an instance has no box on the 336 grid (skipped, not undercounted)"


def add_count_tasks(pools: Pools, box_rows: Iterable[Mapping[str, Any]], lvis_images: Iterable[Mapping[str, Any]], seed: int,
                    image_formats: Mapping[tuple[str, str], str],
                    instance_rows: Iterable[Mapping[str, Any]] | None = None) -> None:
    """count_atomic / count_cot / count_direct per (LVIS image, category), negatives included.

    ``instance_rows`` (``lvis_instances``): every annotation; a (image, category) with an instance
    whose box ``box_tokens`` rejected (collapsed on the 336 grid) is skipped and counted in
    ``pools.skipped``, never answered with the smaller count of the boxes that survived."""
    rng = np.random.default_rng(seed)
    boxes: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    usable: set[int] = set()
    for b in box_rows:
        if b["dataset"] == "lvis":
            boxes[(b["image_id"], b["category_name"])].append(b)
            usable.add(int(b["annotation_id"]))
    unusable = {(str(r["image_id"]), r["category_name"]) for r in instance_rows or ()
                if int(r["annotation_id"]) not in usable}
    by_image: dict[str, list[str]] = defaultdict(list)
    for image_id, cat in set(boxes) | unusable:
        by_image[image_id].append(cat)
    for img in lvis_images:
        image_id = img["image_id"]
        key = ("lvis", image_id)
        if key not in image_formats:
            continue
        file = source_image_file("lvis", image_id, image_formats[key])
        not_exhaustive = set(img.get("not_exhaustive_category_ids") or [])
        groups = [(cat, boxes[(image_id, cat)], False) for cat in sorted(by_image.get(image_id, []))]
        groups += [(name, [], True) for name in sorted(img.get("neg_category_names") or [])]
        for cat, rows, negative in groups:
            if not negative and (image_id, cat) in unusable:
                for kind in ("atomic", "cot", "direct"):
                    pools.skipped[f"count_{kind}"][UNUSABLE_BOX] += 1
                continue
            grid = [GridBox(int(r["x1"]), int(r["y1"]), int(r["x2"]), int(r["y2"])) for r in rows]
            ann = [int(r["annotation_id"]) for r in rows]
            ne = bool(rows) and int(rows[0]["category_id"]) in not_exhaustive
            common = dict(dataset="lvis", image_id=image_id, image_file=file, category_name=cat, boxes=grid,
                          annotation_ids=ann, negative=negative, not_exhaustive=ne)
            for kind in ("atomic", "cot", "direct"):  # only atomic draws from rng
                pools.add(f"count_{kind}", lambda: tasks.build_count(kind, rng=rng, **common))


def add_ground_tasks(pools: Pools, ref_rows: Iterable[Mapping[str, Any]], box_by_ref: Mapping[int, Mapping[str, Any]],
                     depth336: Mapping[str, np.ndarray], codes_by_image: Mapping[tuple[str, str], tuple[list[int], str]],
                     image_formats: Mapping[tuple[str, str], str], seed: int, max_pairs_per_image: int = 2) -> None:
    """ground_atomic per RefCOCO sentence; ground_depth for pairs of referred objects of one image."""
    rng = np.random.default_rng(seed)
    first_sentence: dict[str, dict[int, Mapping[str, Any]]] = defaultdict(dict)
    for r in ref_rows:
        key = ("refcoco", r["image_id"])
        box = box_by_ref.get(int(r["ref_id"]))
        if key not in image_formats:
            continue
        if box is None:
            pools.skipped["ground_atomic"]["box rejected"] += 1
            continue
        grid = GridBox(int(box["x1"]), int(box["y1"]), int(box["x2"]), int(box["y2"]))
        file = source_image_file("refcoco", r["image_id"], image_formats[key])
        pools.add("ground_atomic", lambda: tasks.build_ground_atomic(
            dataset="refcoco", image_id=r["image_id"], image_file=file, expression=r["sentence"], box=grid,
            annotation_id=int(r["ann_id"]), ref_id=int(r["ref_id"]),
            sample_id=f"ground_atomic:refcoco:{r['image_id']}:{r['ref_id']}:{r['sentence_id']}"))
        first_sentence[r["image_id"]].setdefault(int(r["ref_id"]), {**r, "grid": grid})
    for image_id, refs in first_sentence.items():
        key = ("refcoco", image_id)
        if key not in codes_by_image or image_id not in depth336:
            continue
        codes, version = codes_by_image[key]
        objs = [tasks.ReferredObject(expression=r["sentence"], box=r["grid"], depth=tasks.median_depth_in_box(depth336[image_id], r["grid"]),
                               annotation_id=int(r["ann_id"]), ref_id=int(r["ref_id"])) for r in refs.values()]
        for a, b in list(combinations(objs, 2))[:max_pairs_per_image]:
            pools.add("ground_depth", lambda: tasks.build_ground_depth(
                dataset="refcoco", image_id=image_id, image_file=source_image_file(*key, image_formats[key]),
                first=a, second=b, codes=codes, depth_token_version=version, rng=rng))


def schedule_rows(schedule: Sequence[tuple[int, Sample]]) -> Iterable[dict[str, Any]]:
    """Curriculum rows in training order: position, epoch, the sample's fields, conversations."""
    import json

    from perception_tokens.curriculum.llava_json import to_llava_record

    for position, (epoch, sample) in enumerate(schedule):
        record = to_llava_record(sample)
        yield {"position": position, "epoch": epoch, **sample.to_row(), "conversations": json.dumps(record["conversations"])}
