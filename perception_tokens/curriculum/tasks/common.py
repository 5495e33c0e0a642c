"""What every task builder shares: token strings, grid boxes, the image reference."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from perception_tokens.curriculum.sample import TASK_KIND, ImageRef, Sample, SkipSample, make_sample_id
from perception_tokens.vocab import (
    PIXEL_GRID,
    GridBox,
    TokenParseError,
    box_to_grid,
    decode_depth,
    encode_depth,
    pixel_token,
)

BoxInput = Union[GridBox, Sequence[float]]
DepthInput = Union[str, Sequence[int]]


def depth_string(codes: DepthInput) -> str:
    """A depth span from 100 codes or an existing span (validated, returned canonical)."""
    if isinstance(codes, str):
        return encode_depth(decode_depth(codes))
    return encode_depth(codes)


def point_string(x: int, y: int) -> str:
    """A point on the 336 grid as ``(<PIXEL_x>,<PIXEL_y>)``."""
    for v in (x, y):
        if not 0 <= int(v) < PIXEL_GRID:
            raise TokenParseError(f"point coordinate {v} outside 0..{PIXEL_GRID - 1}")
    return f"({pixel_token(int(x))},{pixel_token(int(y))})"


def to_grid_box(box: BoxInput, image_size: tuple[int, int] | None) -> GridBox:
    """A GridBox as is, or COCO ``[x, y, w, h]`` image pixels scaled with ``image_size=(w, h)``."""
    if isinstance(box, GridBox):
        return box
    if image_size is None:
        raise ValueError("boxes in image pixels need image_size=(width, height)")
    return box_to_grid(box, int(image_size[0]), int(image_size[1]))


def reading_order(boxes: Sequence[GridBox]) -> list[GridBox]:
    # Top-to-bottom, then left-to-right: a fixed order so equal inputs give equal answers.
    return sorted(boxes, key=lambda b: (b.y1, b.x1, b.y2, b.x2))


def median_depth_in_box(depth_uint8: np.ndarray, box: GridBox) -> float:
    """Median depth value inside a box (inclusive corners) of a 336x336 depth map."""
    if depth_uint8.shape[:2] != (PIXEL_GRID, PIXEL_GRID):
        raise ValueError(f"depth map must be {PIXEL_GRID}x{PIXEL_GRID}, got {depth_uint8.shape}")
    return float(np.median(depth_uint8[box.y1 : box.y2 + 1, box.x1 : box.x2 + 1]))


def clean_expression(expression: str) -> str:
    """A referring expression tidied for a prompt: single spaces, no trailing punctuation."""
    text = " ".join(str(expression).split()).rstrip(" .,;!?")
    if not text:
        raise SkipSample(f"empty referring expression {expression!r}")
    return text


def task_sample(
    task: str, *, dataset: str, image_id: str, image_file: str, question: str, answer: str, target: str,
    sample_id: str | None, id_parts: Sequence[object] = (), **lineage,
) -> Sample:
    """The Sample of ``task`` (its kind from TASK_KIND); the id defaults to ``task:dataset:image_id[:part...]``.
    ``lineage``: annotation_ids, ref_id, depth_token_version."""
    return Sample(
        sample_id=sample_id or make_sample_id(task, dataset, image_id, *id_parts),
        task=task,
        kind=TASK_KIND[task],
        image=ImageRef(dataset=dataset, image_id=str(image_id), file_name=image_file),
        question=question,
        answer=answer,
        target=target,
        dataset=dataset,
        image_id=str(image_id),
        **lineage,
    )
