"""Perceptio's training mix (arXiv 2603.18795 sec. 3.5): every referring sentence of the train splits of
RefCOCO, RefCOCO+ and RefCOCOg once, as a ``refer_segment`` sample; optionally the depth atomic task.

Rows in (plain dicts as read from Parquet), samples and rejects out; no storage, no Dagster. A
sentence that cannot become a sample is a :class:`~perception_tokens.rejects.Reject` with the reason
(its image has no depth tokens, its mask is missing or malformed, ...), never dropped silently.
Sentences of the val/test splits are not training data (they are the ``refcoco_res`` benchmark's):
they are counted, not rejected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from perception_tokens.curriculum.pools import Pools, add_depth_tasks, source_image_file
from perception_tokens.curriculum.sample import Sample, SkipSample
from perception_tokens.curriculum.tasks.refer import build_refer_segment
from perception_tokens.rejects import Reject

IMAGE_DATASET = "refcoco"  # refcoco_images holds the COCO train2014 pictures of all three sets
TRAIN_SPLIT = "train"
STAGE = "curriculum"
REFER_COLUMNS = ["dataset", "split", "image_id", "ref_id", "ann_id", "sentence_id", "sentence", "mask_rle"]


@dataclass
class ReferPool:
    samples: list[Sample] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    held_out: Counter = field(default_factory=Counter)  # (dataset, split) of sentences kept for evaluation

    def reject_reasons(self) -> dict[str, int]:
        return dict(Counter(r.reason.split(":")[0] for r in self.rejects))


def refer_segment_pool(ref_rows: Iterable[Mapping[str, Any]],
                       codes_by_image: Mapping[tuple[str, str], tuple[Sequence[int], str]],
                       images: Mapping[str, Mapping[str, Any]], source: str = "refcoco_refs") -> ReferPool:
    """One ``refer_segment`` sample per train sentence of ``ref_rows`` (``refcoco_refs`` rows, any of the three sets).

    ``codes_by_image``: ``(dataset, image_id) -> (codes, vqvae_version)`` from ``depth_tokens``;
    ``images``: image id -> ``{"format", "width", "height"}`` of ``refcoco_images``."""
    pool = ReferPool()
    for r in ref_rows:
        dataset, image_id = r["dataset"], str(r["image_id"])
        if r["split"] != TRAIN_SPLIT:
            pool.held_out[(dataset, r["split"])] += 1
            continue
        record = f"{dataset} ref {r['ref_id']} sentence {r['sentence_id']}"

        def reject(reason: str) -> None:
            pool.rejects.append(Reject(dataset, STAGE, source, record, reason))

        image = images.get(image_id)
        if image is None:
            reject(f"image {image_id} is not in refcoco_images (missing or rejected)")
            continue
        codes = codes_by_image.get((IMAGE_DATASET, image_id))
        if codes is None:
            reject(f"no depth tokens for image {image_id} (no pseudo_depth / depth_tokens row)")
            continue
        try:
            pool.samples.append(build_refer_segment(
                dataset=dataset, image_id=image_id, image_file=source_image_file(IMAGE_DATASET, image_id, image["format"]),
                expression=r["sentence"], mask_rle=r.get("mask_rle"), codes=list(codes[0]), depth_token_version=codes[1],
                image_size=(int(image["width"]), int(image["height"])), annotation_id=int(r["ann_id"]),
                ref_id=int(r["ref_id"]), sentence_id=int(r["sentence_id"]), image_dataset=IMAGE_DATASET))
        except SkipSample as exc:
            reject(exc.reason)
    return pool


def add_perceptio_pools(pools: Pools, tasks: Sequence[str], formats: Mapping[tuple[str, str], str],
                        codes_by_image: Mapping[tuple[str, str], tuple[Sequence[int], str]], *,
                        depth_rows: Iterable[Mapping[str, Any]], image_rows: Iterable[Mapping[str, Any]],
                        ref_rows: Iterable[Mapping[str, Any]]) -> ReferPool:
    """Perceptio's pools into ``pools``: refer_segment on every train sentence of ``ref_rows``
    (``refcoco_refs``), and depth_atomic on every image with depth tokens when ``tasks`` has it.
    Returns the refer pool (its rejects, its held-out counts)."""
    if "depth_atomic" in tasks:
        add_depth_tasks(pools, depth_rows, formats)
    refer = refer_segment_pool(ref_rows, codes_by_image, {str(r["image_id"]): r for r in image_rows})
    pools.samples["refer_segment"] = refer.samples
    for reason, n in refer.reject_reasons().items():
        pools.skipped["refer_segment"][reason] += n
    pools.keep_only(tasks)
    return refer


def perceptio_order(samples: Sequence[Sample], *, epochs: int, seed: int, limit: int | None = None) -> list[tuple[int, Sample]]:
    """(epoch, sample) in training order: each epoch every sample once, in a seeded shuffle (the paper
    trains one mixed stage, sec. 3.4; its order is not given). ``limit`` keeps the first N of the order."""
    rng = np.random.default_rng(seed)
    ordered = sorted(samples, key=lambda s: s.sample_id)  # the input order does not matter
    out = [(epoch, ordered[i]) for epoch in range(epochs) for i in rng.permutation(len(ordered))]
    return out[:limit] if limit is not None else out
