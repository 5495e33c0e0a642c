"""VPT's curriculum tasks (arXiv 2502.17425 Sec. 3, 4.1): an answer that first selects a region, one that
first writes the re-encoding control token, and a plain one; wording from
:mod:`perception_tokens.curriculum.vpt_text`, regions from :mod:`perception_tokens.regions`.

A region sample records its target region: the cells covering the object's box on the k x k grid and
their pixel box on the original image (the crop the model will see). Skips (reasons for the rejects
count): a box empty or outside its image, an object whose region is the whole image (nothing to zoom
into), a small-object question without a second category to ask against. No object is too small for
the grid: any box of positive size covers at least one cell (the crop is then that cell).
"""

from __future__ import annotations

from typing import Sequence

from perception_tokens import regions
from perception_tokens.curriculum import vpt_text
from perception_tokens.curriculum.sample import Sample, SkipSample
from perception_tokens.curriculum.tasks.common import clean_expression, task_sample
from perception_tokens.vocab import TokenParseError

WHOLE_IMAGE = "the region is the whole image: nothing to zoom into"


def target_region(box_xywh: Sequence[float], image_size: tuple[int, int], grid: int) -> regions.RegionCells:
    """The cells covering a COCO ``[x, y, w, h]`` pixel box on a ``(width, height)`` image; SkipSample with
    the reason for a box that is empty, outside the image, or covers every cell."""
    x, y, w, h = (float(v) for v in box_xywh)
    width, height = int(image_size[0]), int(image_size[1])
    try:
        cells = regions.box_to_cells((x, y, x + w, y + h), width, height, grid)
    except TokenParseError as err:
        raise SkipSample(f"box unusable: {err.reason}") from err
    if cells.as_tuple() == (0, 0, grid - 1, grid - 1):
        raise SkipSample(WHOLE_IMAGE)
    return cells


def _answer(prefix: str, category: str) -> str:
    return prefix + vpt_text.ANSWER_SEPARATOR + vpt_text.OBJECT_ANSWER.format(category=category)


def build_vpt_region(*, dataset: str, image_id: str, image_file: str, question: str, category: str,
                     box_xywh: Sequence[float], image_size: tuple[int, int], grid: int, stage: int,
                     annotation_id: int | None = None, ref_id: int | None = None, sample_id: str | None = None) -> Sample:
    """A question about one object -> its region on the grid, then the object's category."""
    cells = target_region(box_xywh, image_size, grid)
    return task_sample(
        "vpt_region", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id,
        id_parts=[ref_id if ref_id is not None else annotation_id], question=question,
        answer=_answer(regions.encode_region(cells), category), target=category,
        annotation_ids=() if annotation_id is None else (annotation_id,), ref_id=ref_id, vpt_stage=stage,
        region_grid=grid, region_cells=cells.as_tuple(), region_box_px=cells.pixel_box(*image_size))


def referred_region_question(expression: str) -> str:
    return vpt_text.REGION_REFERRED_QUESTION.format(expression=clean_expression(expression))


def small_object_question(category: str, other: str, category_first: bool) -> str:
    first, second = (category, other) if category_first else (other, category)
    return vpt_text.REGION_SMALL_QUESTION.format(first=first, second=second)


def build_vpt_reencode(*, dataset: str, image_id: str, image_file: str, expression: str, category: str, stage: int,
                       annotation_id: int | None = None, ref_id: int | None = None, sample_id: str | None = None) -> Sample:
    """"What kind of object is <expression>?" -> ``<REENCODE_CONTROL>``, then the category."""
    return task_sample(
        "vpt_reencode", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id,
        id_parts=[ref_id if ref_id is not None else expression],
        question=vpt_text.REENCODE_QUESTION.format(expression=clean_expression(expression)),
        answer=_answer(regions.REENCODE_CONTROL, category), target=category,
        annotation_ids=() if annotation_id is None else (annotation_id,), ref_id=ref_id, vpt_stage=stage)


def build_vpt_plain(*, dataset: str, image_id: str, image_file: str, category: str,
                    annotation_id: int | None = None, ref_id: int | None = None, sample_id: str | None = None) -> Sample:
    """"Is there a <category>?" -> "Yes." with no perception token (always stage 2: nothing to align)."""
    return task_sample(
        "vpt_plain", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id,
        id_parts=[ref_id if ref_id is not None else category],
        question=vpt_text.PLAIN_QUESTION.format(category=category), answer=vpt_text.PLAIN_YES, target="yes",
        annotation_ids=() if annotation_id is None else (annotation_id,), ref_id=ref_id, vpt_stage=2)
