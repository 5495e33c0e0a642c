"""A counted category with an instance whose box collapses on the 336 grid (box_tokens rejects
it) is skipped and counted in the skip table, never answered with the surviving boxes' smaller
count. The reference skips such an image: ``is_valid = all(str(t) in annotations for t in
ann_ids)`` then ``continue`` (create_bbox_annealing_data.ipynb cells 4-5)."""

from __future__ import annotations

import random

from perception_tokens.curriculum import aurora_pools, aurora_reference
from perception_tokens.curriculum.pools import UNUSABLE_BOX, Pools, add_count_tasks

# image 7: three cups, annotation 3 a sliver that collapses on the grid (box_tokens rejected it);
# image 8: two plates, both usable
INSTANCES = [
    {"annotation_id": 1, "image_id": "7", "category_id": 10, "category_name": "cup"},
    {"annotation_id": 2, "image_id": "7", "category_id": 10, "category_name": "cup"},
    {"annotation_id": 3, "image_id": "7", "category_id": 10, "category_name": "cup"},
    {"annotation_id": 4, "image_id": "8", "category_id": 20, "category_name": "plate"},
    {"annotation_id": 5, "image_id": "8", "category_id": 20, "category_name": "plate"},
]
BOXES = [{"dataset": "lvis", "x1": 10 * i, "y1": 10, "x2": 10 * i + 8, "y2": 30, **r} for i, r in enumerate(INSTANCES)
         if r["annotation_id"] != 3]
LVIS_IMAGES = [{"image_id": i, "neg_category_ids": [], "neg_category_names": [], "not_exhaustive_category_ids": []}
               for i in ("7", "8")]


def test_aurora_selection_skips_the_image_instead_of_answering_two():
    images, names = aurora_pools.count_images(LVIS_IMAGES, BOXES, INSTANCES)
    chosen, skipped = aurora_reference.select_count_images(
        images, ["7", "8"], lambda c: names[c] + "s", random.Random(0), atomic=False)
    assert [(c.image_id, c.num) for c, _ in chosen] == [("8", 2)]  # no "2 cups" for image 7
    assert skipped == {aurora_reference.UNUSABLE_BOX: 1}


def test_project_pools_skip_the_category_and_count_it_per_task():
    pools = Pools()
    formats = {("lvis", "7"): "jpeg", ("lvis", "8"): "jpeg"}
    add_count_tasks(pools, BOXES, LVIS_IMAGES, 0, formats, instance_rows=INSTANCES)
    answers = {(s.task, s.image_id): s.target for task in ("count_direct", "count_cot", "count_atomic")
               for s in pools.samples[task]}
    assert answers == {("count_direct", "8"): "2", ("count_cot", "8"): "2", ("count_atomic", "8"): "2"}
    for task in ("count_atomic", "count_cot", "count_direct"):
        assert pools.skipped[task][UNUSABLE_BOX] == 1
