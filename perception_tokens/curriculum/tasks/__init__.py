"""Task builders: plain inputs in, one :class:`Sample` out (or :class:`SkipSample` with a reason).

Eight tasks, three kinds (Aurora Sec. 3.4 / 4.1-4.2), one module per family, and Perceptio's
referring task (``refer_segment``, arXiv 2603.18795 sec. 3.5; import it from ``tasks.refer``:
it uses the [SEG] token kind, which imports this package's templates):

========================  ========  ==============================================
task                      kind      question -> answer
========================  ========  ==============================================
depth_atomic              atomic    depth map question -> depth token string
depth_cot                 cot       marked points + step-by-step -> points, depth, (X)
depth_direct              direct    marked points -> (X)
count_atomic              atomic    "find the <plural>" -> one box per line
count_cot                 cot       how many + step-by-step -> boxes, "There are N"
count_direct              direct    how many -> "N"
ground_atomic             atomic    "Where is <expr>?" -> box
ground_depth              cot       which of two referred objects is closer -> boxes, depth, nearer
refer_segment             cot       segment <expr> -> [SEG], depth span, description (+ mask)
========================  ========  ==============================================

The three counting tasks are one builder, :func:`build_count`, with the kind as its
first argument. Every token string comes from :mod:`perception_tokens.vocab`; wording
from :mod:`perception_tokens.curriculum.templates`. Coordinates are on the 336 grid:
points/boxes already on it are passed as ints / GridBox, boxes in image pixels as
COCO ``[x, y, w, h]`` together with ``image_size=(width, height)``.
"""

from perception_tokens.curriculum.tasks.common import (
    clean_expression,
    depth_string,
    median_depth_in_box,
    point_string,
    to_grid_box,
)
from perception_tokens.curriculum.tasks.count import MAX_COUNT, build_count, count_sentence
from perception_tokens.curriculum.tasks.depth import build_depth_atomic, build_depth_cot, build_depth_direct
from perception_tokens.curriculum.tasks.ground import ReferredObject, build_ground_atomic, build_ground_depth

__all__ = [
    "MAX_COUNT",
    "ReferredObject",
    "build_count",
    "build_depth_atomic",
    "build_depth_cot",
    "build_depth_direct",
    "build_ground_atomic",
    "build_ground_depth",
    "clean_expression",
    "count_sentence",
    "depth_string",
    "median_depth_in_box",
    "point_string",
    "to_grid_box",
]
