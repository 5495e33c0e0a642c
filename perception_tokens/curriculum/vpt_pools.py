"""VPT's sample pools and order from the project's tables (plain dict rows in, Samples out).

RefCOCO: each expression becomes one of a region, a re-encoding or a plain sample (a seeded draw by
``shares``); LVIS: each small object (area at most ``small_max_area`` of its image) becomes a region
sample asking which of two categories it is. ``align_fraction`` of the perception-token samples (a
seeded draw per sample) form stage 1 (align the projector and the new rows); the rest, and every plain
sample, form stage 2. Order: stage 1 in a seeded permutation (epoch 0), then stage 2 (epoch 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from perception_tokens.buckets import hash_bucket
from perception_tokens.curriculum.pools import Pools, source_image_file
from perception_tokens.curriculum.sample import Sample, SkipSample
from perception_tokens.curriculum.tasks import vpt as vpt_tasks

BUCKETS = 1_000_000


@dataclass(frozen=True)
class VptCurriculum:
    """``curriculum.vpt``: the grid (must match ``finetune.vpt.grid``) and the paper-silent choices."""

    grid: int = 8
    align_fraction: float = 0.3
    small_max_area: float = 0.05
    shares: dict[str, float] = field(default_factory=lambda: {"vpt_region": 1.0, "vpt_reencode": 1.0, "vpt_plain": 1.0})

    def __post_init__(self) -> None:
        if self.grid < 1:
            raise ValueError(f"curriculum.vpt.grid must be >= 1, got {self.grid}")
        if not 0 <= self.align_fraction <= 1 or not 0 < self.small_max_area <= 1:
            raise ValueError("curriculum.vpt.align_fraction must be in [0, 1] and small_max_area in (0, 1]")
        unknown = set(self.shares) - {"vpt_region", "vpt_reencode", "vpt_plain"}
        if unknown or any(v < 0 for v in self.shares.values()) or not sum(self.shares.values()):
            raise ValueError(f"curriculum.vpt.shares: weights >= 0 of vpt_region / vpt_reencode / vpt_plain, got {self.shares}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _draw(key: str) -> float:
    return hash_bucket(key, BUCKETS) / BUCKETS


def _stage(sample_key: str, seed: int, align_fraction: float) -> int:
    return 1 if _draw(f"vpt-stage:{seed}:{sample_key}") < align_fraction else 2


def _task_of(key: str, seed: int, shares: Mapping[str, float], wanted: set[str]) -> str | None:
    tasks = [t for t in ("vpt_region", "vpt_reencode", "vpt_plain") if t in wanted and shares.get(t, 0) > 0]
    if not tasks:
        return None
    total, u, edge = sum(shares[t] for t in tasks), _draw(f"vpt-task:{seed}:{key}"), 0.0
    for task in tasks:
        edge += shares[task] / total
        if u < edge:
            return task
    return tasks[-1]


def add_refcoco(pools: Pools, ref_rows: Iterable[Mapping[str, Any]], formats: Mapping[tuple[str, str], str],
                vpt: VptCurriculum, seed: int, wanted: set[str]) -> None:
    """One sample per RefCOCO expression: region, re-encoding or plain."""
    for r in ref_rows:
        key = (r["dataset"], str(r["image_id"]))
        if key not in formats:
            continue
        ids = f"{r['dataset']}:{r['ref_id']}:{r['sentence_id']}"
        task = _task_of(ids, seed, vpt.shares, wanted)
        if task is None:
            continue
        common = dict(dataset=r["dataset"], image_id=str(r["image_id"]), image_file=source_image_file(*key, formats[key]),
                      annotation_id=int(r["ann_id"]), ref_id=int(r["ref_id"]), sample_id=f"{task}:{ids}")
        category, stage = r["category_name"], _stage(ids, seed, vpt.align_fraction)
        if task == "vpt_region":
            box = (r["bbox_x"], r["bbox_y"], r["bbox_w"], r["bbox_h"])
            pools.add(task, lambda: vpt_tasks.build_vpt_region(
                question=vpt_tasks.referred_region_question(r["sentence"]), category=category, box_xywh=box,
                image_size=(r["image_width"], r["image_height"]), grid=vpt.grid, stage=stage, **common))
        elif task == "vpt_reencode":
            pools.add(task, lambda: vpt_tasks.build_vpt_reencode(expression=r["sentence"], category=category, stage=stage,
                                                                 **common))
        else:
            pools.add(task, lambda: vpt_tasks.build_vpt_plain(category=category, **common))


def add_lvis_small(pools: Pools, instance_rows: Iterable[Mapping[str, Any]], formats: Mapping[tuple[str, str], str],
                   vpt: VptCurriculum, seed: int) -> None:
    """A region sample per small LVIS object: "is it a <category> or a <other>?" (other: a seeded draw among
    the other LVIS categories)."""
    rows = [r for r in instance_rows if ("lvis", str(r["image_id"])) in formats]
    categories = sorted({r["category_name"] for r in rows})
    rng = np.random.default_rng(seed)
    for r in sorted(rows, key=lambda r: int(r["annotation_id"])):
        image_area = float(r["image_width"]) * float(r["image_height"])
        if image_area <= 0 or float(r["bbox_w"]) * float(r["bbox_h"]) > vpt.small_max_area * image_area:
            pools.skipped["vpt_region"][f"LVIS object larger than {vpt.small_max_area:g} of its image (not small)"] += 1
            continue
        others = [c for c in categories if c != r["category_name"]]
        key = ("lvis", str(r["image_id"]))
        ids = f"lvis:{r['annotation_id']}"

        def build(r=r, others=others, key=key, ids=ids) -> Sample:
            if not others:
                raise SkipSample("no second LVIS category to ask against")
            other, first = others[int(rng.integers(len(others)))], bool(rng.integers(2))
            return vpt_tasks.build_vpt_region(
                dataset="lvis", image_id=key[1], image_file=source_image_file(*key, formats[key]),
                question=vpt_tasks.small_object_question(r["category_name"], other, first), category=r["category_name"],
                box_xywh=(r["bbox_x"], r["bbox_y"], r["bbox_w"], r["bbox_h"]),
                image_size=(r["image_width"], r["image_height"]), grid=vpt.grid,
                stage=_stage(ids, seed, vpt.align_fraction), annotation_id=int(r["annotation_id"]),
                sample_id=f"vpt_region:{ids}")

        pools.add("vpt_region", build)


def vpt_order(samples: Iterable[Sample], seed: int) -> list[tuple[int, Sample]]:
    """(epoch, sample): stage 1 (epoch 0) then stage 2 (epoch 1), each in a seeded permutation."""
    rng, samples = np.random.default_rng(seed), list(samples)
    ordered = []
    for epoch, stage in enumerate((1, 2)):
        chosen = sorted((s for s in samples if s.vpt_stage == stage), key=lambda s: s.sample_id)
        ordered += [(epoch, chosen[i]) for i in rng.permutation(len(chosen))]
    return ordered


def vpt_schedule(pools: Pools, *, tasks: Iterable[str], vpt: Mapping[str, Any], seed: int,
                 ref_rows: Iterable[Mapping[str, Any]], instance_rows: Iterable[Mapping[str, Any]],
                 formats: Mapping[tuple[str, str], str]) -> list[tuple[int, Sample]]:
    """The VPT curriculum in training order from RefCOCO refs (``dataset == "refcoco"``) and LVIS instances;
    ``pools`` collects the samples and the skip reasons."""
    settings, wanted = VptCurriculum(**vpt), set(tasks)
    add_refcoco(pools, (r for r in ref_rows if r["dataset"] == "refcoco"), formats, settings, seed, wanted)
    if "vpt_region" in wanted:
        add_lvis_small(pools, instance_rows, formats, settings, seed)
    pools.keep_only(wanted)
    return vpt_order((s for task in sorted(pools.samples) for s in pools.samples[task]), seed)
