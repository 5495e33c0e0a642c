"""Perceptio's referring-expression task: segment, give the depth map, describe (Perceptio sec. 3.2, 3.5).

One sample per referring sentence: the question names the expression
(``perceptio_text.refer_question``); the answer is ``[SEG]``, the image's depth span and a
one-sentence description (``perceptio_text.refer_answer``); the sample carries the referred
object's mask (COCO compressed RLE) so the fine-tune's segmentation head learns it from the
hidden state at ``[SEG]``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from perception_tokens.curriculum import perceptio_text
from perception_tokens.curriculum.sample import ImageRef, Sample, SkipSample
from perception_tokens.curriculum.tasks.common import DepthInput, clean_expression, depth_string, task_sample
from perception_tokens.masks import MaskFormatError, check_rle
from perception_tokens.vocab import TokenParseError


def build_refer_segment(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    expression: str,
    mask_rle: Mapping[str, Any] | None,
    codes: DepthInput,
    depth_token_version: str,
    image_size: tuple[int, int] | None = None,
    annotation_id: int | None = None,
    ref_id: int | None = None,
    sentence_id: int | None = None,
    image_dataset: str = "refcoco",
) -> Sample:
    """The sample of one referring sentence, or :class:`SkipSample` saying why it cannot be made.

    ``dataset``: the referring set (refcoco / refcoco+ / refcocog); ``image_dataset``: the image
    table the picture comes from. ``image_size`` (width, height): when given, the mask must be
    that size. Skips: an empty expression, a missing or malformed mask, a mask of another size,
    depth codes that do not make a span.
    """
    expr = clean_expression(expression)
    if mask_rle is None:
        raise SkipSample("no mask for the referred object (mask_rle is null)")
    try:
        rle = check_rle(dict(mask_rle))
    except MaskFormatError as exc:
        raise SkipSample(f"mask unusable: {exc}") from exc
    height, width = rle["size"]
    if image_size is not None and (width, height) != tuple(image_size):
        raise SkipSample(f"mask is {height}x{width} but the image is {image_size[1]}x{image_size[0]}")
    try:
        span = depth_string(codes)
    except TokenParseError as err:
        raise SkipSample(f"depth codes do not make a span: {err.reason}") from err
    sample = task_sample(
        "refer_segment", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=None,
        id_parts=[sentence_id if sentence_id is not None else expr],
        question=perceptio_text.refer_question(expr),
        answer=perceptio_text.refer_answer(span, perceptio_text.description_from_expression(expr)),
        target=expr, annotation_ids=() if annotation_id is None else (annotation_id,), ref_id=ref_id,
        depth_token_version=depth_token_version, mask_rle={"size": [int(height), int(width)], "counts": rle["counts"]},
    )
    # the three sets share COCO train2014: the picture is the image table's, the sample the set's
    return replace(sample, image=ImageRef(dataset=image_dataset, image_id=str(image_id), file_name=image_file))
