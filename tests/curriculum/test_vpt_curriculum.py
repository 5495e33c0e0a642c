"""VPT's curriculum (arXiv 2502.17425 Sec. 3, 4.1): region samples whose answer first selects the object's
cells on the k grid (cells and pixel box recorded), re-encoding and plain samples, two stages, and the
skips with their reasons."""

import json

import pytest

from perception_tokens import regions
from perception_tokens.curriculum import vpt_text
from perception_tokens.curriculum.llava_json import to_llava_record
from perception_tokens.curriculum.pools import Pools
from perception_tokens.curriculum.sample import Sample, SkipSample
from perception_tokens.curriculum.tasks.vpt import WHOLE_IMAGE, build_vpt_region, target_region
from perception_tokens.curriculum.vpt_pools import VptCurriculum, vpt_schedule


def test_a_box_maps_to_the_cells_covering_it_on_each_grid():
    # 200x100 image, box x 30..70, y 10..40: k=4 cells are 50x25 px, k=8 cells 25x12.5 px
    assert target_region((30, 10, 40, 30), (200, 100), 4).as_tuple() == (0, 0, 1, 1)
    assert target_region((30, 10, 40, 30), (200, 100), 8).as_tuple() == (1, 0, 2, 3)
    with pytest.raises(SkipSample, match="outside the 200x100 image"):
        target_region((190, 10, 40, 30), (200, 100), 8)
    with pytest.raises(SkipSample, match="empty"):
        target_region((30, 10, 0, 30), (200, 100), 8)
    with pytest.raises(SkipSample, match=WHOLE_IMAGE):
        target_region((0, 0, 200, 100), (200, 100), 4)


def test_a_region_sample_answers_with_its_region_then_the_object_and_records_it():
    sample = build_vpt_region(dataset="refcoco", image_id="7", image_file="refcoco/7.jpg", question="Q?", category="cup",
                              box_xywh=(30, 10, 40, 30), image_size=(200, 100), grid=8, stage=1, ref_id=3, annotation_id=9)
    region = regions.encode_region(regions.RegionCells(1, 0, 2, 3, grid=8))
    assert sample.answer == region + " " + vpt_text.OBJECT_ANSWER.format(category="cup")
    assert (sample.region_grid, sample.region_cells, sample.region_box_px) == (8, (1, 0, 2, 3), (25, 0, 75, 50))
    assert sample.target == "cup" and sample.kind == "cot"
    row = sample.to_row()
    assert row["region_cells"] == [1, 0, 2, 3] and row["vpt_stage"] == 1
    assert Sample.from_row(row) == sample
    assert to_llava_record(sample)["vpt_stage"] == 1


def ref(i, category, box, width=200, height=100):
    return {"dataset": "refcoco", "ref_id": i, "ann_id": 100 + i, "sentence_id": i, "image_id": str(i % 3),
            "sentence": f"the {category} number {i}", "category_name": category, "bbox_x": box[0], "bbox_y": box[1],
            "bbox_w": box[2], "bbox_h": box[3], "image_width": width, "image_height": height}


def instance(i, category, box, width=400, height=400):
    return {"annotation_id": i, "image_id": "9", "category_name": category, "bbox_x": box[0], "bbox_y": box[1],
            "bbox_w": box[2], "bbox_h": box[3], "image_width": width, "image_height": height}


def test_the_schedule_mixes_the_three_tasks_puts_stage_one_first_and_counts_every_skip():
    formats = {("refcoco", str(i)): "jpeg" for i in range(3)} | {("lvis", "9"): "jpeg"}
    refs = [ref(i, "cup" if i % 2 else "dog", (30, 10, 40, 30)) for i in range(60)]
    refs.append({**ref(60, "cat", (0, 0, 0, 0)), "dataset": "refcoco+"})  # another referring set: not VPT's source
    instances = [instance(1, "bell", (10, 10, 20, 20)), instance(2, "sofa", (0, 0, 300, 300)),
                 instance(3, "key", (390, 10, 30, 20))]
    pools = Pools()
    schedule = vpt_schedule(pools, tasks=["vpt_region", "vpt_reencode", "vpt_plain"], vpt={"grid": 8}, seed=0,
                            ref_rows=refs, instance_rows=instances, formats=formats)
    counts = pools.counts()
    assert sum(counts.values()) == 60 + 1 and all(counts[t] >= 10 for t in counts)  # 60 refs, 1 small LVIS object
    stages = [s.vpt_stage for _, s in schedule]
    assert stages == sorted(stages) and stages[0] == 1 and [e for e, _ in schedule] == [s - 1 for s in stages]
    assert all(s.vpt_stage == 2 for _, s in schedule if s.task == "vpt_plain")
    for _, s in schedule:
        if s.task == "vpt_region":
            assert s.answer.startswith(regions.REGION_START) and s.region_grid == 8
        elif s.task == "vpt_reencode":
            assert s.answer.startswith(regions.REENCODE_CONTROL) and s.region_cells is None
        else:
            assert "<" not in s.answer
    bell = next(s for _, s in schedule if s.dataset == "lvis")
    assert bell.region_cells == (0, 0, 0, 0) and bell.region_box_px == (0, 0, 50, 50) and bell.target == "bell"
    assert "bell" in bell.question and ("sofa" in bell.question or "key" in bell.question)  # vs another category
    assert pools.skipped["vpt_region"] == {"LVIS object larger than 0.05 of its image (not small)": 1,
                                           "box unusable": 1}  # the sofa; the key's box leaves its image
    again = vpt_schedule(Pools(), tasks=["vpt_region", "vpt_reencode", "vpt_plain"], vpt={"grid": 8}, seed=0,
                         ref_rows=refs, instance_rows=instances, formats=formats)
    assert [s.sample_id for _, s in again] == [s.sample_id for _, s in schedule]  # seeded


def test_the_settings_refuse_unknown_keys_and_bad_fractions():
    with pytest.raises(ValueError, match="align_fraction"):
        VptCurriculum(align_fraction=1.5)
    with pytest.raises(ValueError, match="shares"):
        VptCurriculum(shares={"vpt_zoom": 1.0})
    assert json.loads(json.dumps(VptCurriculum().to_dict()))["grid"] == 8
