"""Counting tasks on LVIS (Aurora Sec. 4.2): one builder, the kind picks question and answer.

==========  ===========================================  =====================================
kind        question                                     answer
==========  ===========================================  =====================================
atomic      "Find the <plural> ..." (phrasing by ``rng``)  one box token string per line
cot         "How many <plural> ...?" + locate-first step  box lines, then "There are N <plural>."
direct      "How many <plural> are in the image?"         the count as a number ("3")
==========  ===========================================  =====================================
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from perception_tokens.curriculum import templates
from perception_tokens.curriculum.plurals import clean_category_name, pluralize
from perception_tokens.curriculum.sample import Sample, SkipSample
from perception_tokens.curriculum.tasks.common import BoxInput, reading_order, task_sample, to_grid_box
from perception_tokens.vocab import GridBox, TokenParseError, encode_box

# Aurora keeps LVIS images whose object counts are 0..15 (Sec. 4.2).
MAX_COUNT = 15

CountKind = Literal["atomic", "cot", "direct"]


def count_sentence(count: int, category_name: str) -> str:
    """"There are N <plural>." ("There is 1 <noun>." for one)."""
    if count == 1:
        return templates.COUNT_RESULT_ONE.format(singular=clean_category_name(category_name))
    return templates.COUNT_RESULT_MANY.format(count=count, plural=pluralize(category_name))


def _count_boxes(
    category_name: str,
    boxes: Sequence[BoxInput],
    image_size: tuple[int, int] | None,
    *,
    negative: bool,
    not_exhaustive: bool,
    max_count: int,
) -> list[GridBox]:
    """Validated, grid-scaled boxes in reading order, or SkipSample with Aurora's filters."""
    if not_exhaustive:
        raise SkipSample(f"category {category_name!r} is not exhaustively annotated in this image")
    if negative and boxes:
        raise SkipSample(f"category {category_name!r} is listed as negative but has {len(boxes)} boxes")
    if not negative and not boxes:
        raise SkipSample(f"category {category_name!r} has no boxes and is not a verified negative")
    if len(boxes) > max_count:
        raise SkipSample(f"{len(boxes)} instances of {category_name!r} exceed the maximum count {max_count}")
    grid = []
    for box in boxes:
        try:
            grid.append(to_grid_box(box, image_size))
        except TokenParseError as err:  # a tiny box collapses on the grid: the count would be wrong
            raise SkipSample(f"box {list(box) if not isinstance(box, GridBox) else box} unusable: {err.reason}") from err
    return reading_order(grid)


def _question_and_answer(kind: CountKind, category_name: str, grid: Sequence[GridBox],
                         rng: np.random.Generator | None) -> tuple[str, str]:
    plural = pluralize(category_name)
    if kind == "atomic":
        if rng is None:
            raise ValueError("count kind 'atomic' draws its phrasing: pass rng=np.random.Generator")
        template = templates.COUNT_ATOMIC_TEMPLATES[int(rng.integers(len(templates.COUNT_ATOMIC_TEMPLATES)))]
        answer = "\n".join(encode_box(b) for b in grid) if grid else templates.COUNT_NONE_ANSWER.format(plural=plural)
        return template.format(plural=plural), answer
    question = templates.COUNT_QUESTION.format(plural=plural)
    if kind == "cot":
        lines = [encode_box(b) for b in grid] + [count_sentence(len(grid), category_name)]
        return question + "\n" + templates.COUNT_COT_INSTRUCTION.format(plural=plural), "\n".join(lines)
    if kind == "direct":
        return question, str(len(grid))
    raise ValueError(f"unknown count kind {kind!r}: expected atomic, cot or direct")


def build_count(
    kind: CountKind,
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    category_name: str,
    boxes: Sequence[BoxInput],
    rng: np.random.Generator | None = None,
    image_size: tuple[int, int] | None = None,
    annotation_ids: Sequence[int] = (),
    negative: bool = False,
    not_exhaustive: bool = False,
    max_count: int = MAX_COUNT,
    sample_id: str | None = None,
) -> Sample:
    """The ``count_<kind>`` sample of one category in one image; the count is the target.

    ``atomic`` draws its phrasing with ``rng`` (required there, unused otherwise) and
    answers a verified negative category (``negative=True``, no boxes) with "There are no
    <plural> in the image.". Every kind skips (SkipSample) categories that are not
    exhaustively annotated in the image, counts above ``max_count``, and boxes that
    collapse on the 336 grid.
    """
    grid = _count_boxes(
        category_name, boxes, image_size, negative=negative, not_exhaustive=not_exhaustive, max_count=max_count
    )
    question, answer = _question_and_answer(kind, category_name, grid, rng)
    return task_sample(
        f"count_{kind}", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id,
        id_parts=[clean_category_name(category_name).replace(" ", "_")],
        question=question, answer=answer, target=str(len(grid)), annotation_ids=tuple(annotation_ids),
    )
