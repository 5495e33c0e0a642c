"""Grounding tasks: where a referred object is (atomic), which of two is nearer (cot)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception_tokens.curriculum import templates
from perception_tokens.curriculum.sample import Sample, SkipSample
from perception_tokens.curriculum.tasks.common import (
    BoxInput,
    DepthInput,
    clean_expression,
    depth_string,
    task_sample,
    to_grid_box,
)
from perception_tokens.vocab import TokenParseError, encode_box


def build_ground_atomic(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    expression: str,
    box: BoxInput,
    image_size: tuple[int, int] | None = None,
    annotation_id: int | None = None,
    ref_id: int | None = None,
    sample_id: str | None = None,
) -> Sample:
    """"Where is <expression>?" -> the referred object's box tokens."""
    expr = clean_expression(expression)
    try:
        grid = to_grid_box(box, image_size)
    except TokenParseError as err:
        raise SkipSample(f"box of {expr!r} unusable: {err.reason}") from err
    tokens = encode_box(grid)
    return task_sample(
        "ground_atomic", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id,
        id_parts=[ref_id if ref_id is not None else expr],
        question=templates.GROUND_QUESTION.format(expression=expr), answer=tokens, target=tokens,
        annotation_ids=() if annotation_id is None else (annotation_id,), ref_id=ref_id,
    )


@dataclass(frozen=True)
class ReferredObject:
    """One referred object for ground_depth: its expression, box and depth.

    ``depth`` is the median of the 336x336 depth map inside the box (larger = nearer);
    compute it with :func:`median_depth_in_box`.
    """

    expression: str
    box: BoxInput
    depth: float
    annotation_id: int | None = None
    ref_id: int | None = None


def build_ground_depth(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    first: ReferredObject,
    second: ReferredObject,
    codes: DepthInput,
    depth_token_version: str,
    image_size: tuple[int, int] | None = None,
    rng: np.random.Generator | None = None,
    min_depth_gap: float = 10.0,
    sample_id: str | None = None,
) -> Sample:
    """"Which is closer to the camera, <expr1> or <expr2>?" answered through depth.

    Answer: both boxes (question order), the depth token string and a conclusion naming
    the nearer expression (larger depth). With ``rng`` the two objects are put in random
    order so the answer is not tied to position. Skips pairs whose depths differ by less
    than ``min_depth_gap`` (no clear answer), identical expressions and identical boxes.
    ``ref_id`` records the first object's ref; ``annotation_ids`` both annotations.
    """
    a, b = first, second
    if rng is not None and rng.random() < 0.5:
        a, b = b, a
    expr_a, expr_b = clean_expression(a.expression), clean_expression(b.expression)
    if expr_a.lower() == expr_b.lower():
        raise SkipSample(f"both objects are called {expr_a!r}")
    if abs(float(a.depth) - float(b.depth)) < min_depth_gap:
        raise SkipSample(f"depths {a.depth:.1f} and {b.depth:.1f} differ by less than {min_depth_gap}")
    try:
        box_a, box_b = to_grid_box(a.box, image_size), to_grid_box(b.box, image_size)
    except TokenParseError as err:
        raise SkipSample(f"box unusable: {err.reason}") from err
    if box_a == box_b:
        raise SkipSample(f"{expr_a!r} and {expr_b!r} have the same box on the grid")
    nearer = expr_a if a.depth > b.depth else expr_b
    located = ", ".join(
        templates.OBJECT_LOCATION.format(expression=e, box=encode_box(g)) for e, g in ((expr_a, box_a), (expr_b, box_b))
    )
    answer = (
        located
        + ". "
        + templates.DEPTH_MAP_SENTENCE.format(depth=depth_string(codes))
        + " "
        + templates.GROUND_DEPTH_CONCLUSION.format(nearer=nearer)
    )
    ids = tuple(x.annotation_id for x in (a, b) if x.annotation_id is not None)
    parts = [x.ref_id if x.ref_id is not None else clean_expression(x.expression) for x in (a, b)]
    return task_sample(
        "ground_depth", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id, id_parts=parts,
        question=templates.GROUND_DEPTH_QUESTION.format(first=expr_a, second=expr_b), answer=answer, target=nearer,
        annotation_ids=ids, ref_id=a.ref_id, depth_token_version=depth_token_version,
    )
