"""Task builders: plain inputs in, one :class:`Sample` out (or :class:`SkipSample` with a reason).

Eight tasks, three kinds (Aurora Sec. 3.4 / 4.1-4.2):

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
========================  ========  ==============================================

Every token string comes from :mod:`perception_tokens.vocab`; wording from
:mod:`perception_tokens.curriculum.templates`. Coordinates are on the 336 grid:
points/boxes already on it are passed as ints / GridBox, boxes in image pixels as
COCO ``[x, y, w, h]`` together with ``image_size=(width, height)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Sequence, Union

import numpy as np

from perception_tokens.curriculum import templates as T
from perception_tokens.curriculum.plurals import clean_category_name, pluralize
from perception_tokens.curriculum.sample import ImageRef, Sample, SkipSample, make_sample_id
from perception_tokens.markers import MarkedPoint, closest_point
from perception_tokens.vocab import (
    PIXEL_GRID,
    GridBox,
    TokenParseError,
    box_to_grid,
    decode_depth,
    encode_box,
    encode_depth,
    pixel_token,
)

# Aurora keeps LVIS images whose object counts are 0..15 (Sec. 4.2).
MAX_COUNT = 15

BoxInput = Union[GridBox, Sequence[float]]
DepthInput = Union[str, Sequence[int]]

__all__ = [
    "MAX_COUNT",
    "ReferredObject",
    "build_count_atomic",
    "build_count_cot",
    "build_count_direct",
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


# ---------------------------------------------------------------------------- token helpers


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


def _reading_order(boxes: Sequence[GridBox]) -> list[GridBox]:
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


def _image(dataset: str, image_id: str, image_file: str) -> ImageRef:
    return ImageRef(dataset=dataset, image_id=str(image_id), file_name=image_file)


# ---------------------------------------------------------------------------- depth


def build_depth_atomic(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    codes: DepthInput,
    depth_token_version: str,
    sample_id: str | None = None,
) -> Sample:
    """"What is the depth map for the image?" -> the image's depth token string."""
    depth = depth_string(codes)
    return Sample(
        sample_id=sample_id or make_sample_id("depth_atomic", dataset, image_id),
        task="depth_atomic",
        kind="atomic",
        image=_image(dataset, image_id, image_file),
        question=T.DEPTH_ATOMIC_QUESTION,
        answer=depth,
        target=depth,
        dataset=dataset,
        image_id=str(image_id),
        depth_token_version=depth_token_version,
    )


def _ordered_points(points: Sequence[MarkedPoint]) -> list[MarkedPoint]:
    if len(points) < 2:
        raise ValueError(f"need at least 2 marked points, got {len(points)}")
    letters = [p.letter for p in points]
    if len(set(letters)) != len(letters):
        raise ValueError(f"duplicate point letters {letters}")
    return sorted(points, key=lambda p: p.letter)


def build_depth_cot(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    points: Sequence[MarkedPoint],
    codes: DepthInput,
    depth_token_version: str,
    bottleneck: bool = False,
    sample_id: str | None = None,
) -> Sample:
    """Marked-points question with the step-by-step instruction.

    Answer: each point's 336-grid coordinates as pixel tokens (letter order), the depth
    token string, and a conclusion ending with "(X)". With ``bottleneck=True`` the answer
    keeps only the perception tokens and the final "(X)" (one item per line), so the
    choice can only come from the tokens.
    """
    ordered = _ordered_points(points)
    letter = closest_point(ordered)
    depth = depth_string(codes)
    if bottleneck:
        lines = [T.POINT_BOTTLENECK.format(letter=p.letter, point=point_string(p.x, p.y)) for p in ordered]
        answer = "\n".join(lines + [depth, T.CHOICE_ANSWER.format(letter=letter)])
    else:
        located = ", ".join(
            T.POINT_LOCATION.format(letter=p.letter, point=point_string(p.x, p.y)) for p in ordered
        )
        answer = (
            located
            + ". "
            + T.DEPTH_MAP_SENTENCE.format(depth=depth)
            + " "
            + T.DEPTH_CONCLUSION.format(letter=letter)
        )
    stem = PurePosixPath(image_file).stem
    default_id = make_sample_id("depth_cot", dataset, image_id, stem, *(["bottleneck"] if bottleneck else []))
    return Sample(
        sample_id=sample_id or default_id,
        task="depth_cot",
        kind="cot",
        image=_image(dataset, image_id, image_file),
        question=T.DEPTH_COT_QUESTION,
        answer=answer,
        target=letter,
        dataset=dataset,
        image_id=str(image_id),
        depth_token_version=depth_token_version,
    )


def build_depth_direct(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    points: Sequence[MarkedPoint],
    sample_id: str | None = None,
) -> Sample:
    """Marked-points question without instruction -> "(X)"."""
    letter = closest_point(_ordered_points(points))
    stem = PurePosixPath(image_file).stem
    return Sample(
        sample_id=sample_id or make_sample_id("depth_direct", dataset, image_id, stem),
        task="depth_direct",
        kind="direct",
        image=_image(dataset, image_id, image_file),
        question=T.DEPTH_POINTS_QUESTION,
        answer=T.CHOICE_ANSWER.format(letter=letter),
        target=letter,
        dataset=dataset,
        image_id=str(image_id),
    )


# ---------------------------------------------------------------------------- counting


def count_sentence(count: int, category_name: str) -> str:
    """"There are N <plural>." ("There is 1 <noun>." for one)."""
    if count == 1:
        return T.COUNT_RESULT_ONE.format(singular=clean_category_name(category_name))
    return T.COUNT_RESULT_MANY.format(count=count, plural=pluralize(category_name))


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
    return _reading_order(grid)


def _count_id(task: str, dataset: str, image_id: str, category_name: str) -> str:
    return make_sample_id(task, dataset, image_id, clean_category_name(category_name).replace(" ", "_"))


def _count_sample(
    task: str, kind: str, question: str, answer: str, grid: Sequence[GridBox], *, dataset: str, image_id: str,
    image_file: str, category_name: str, annotation_ids: Sequence[int], sample_id: str | None,
) -> Sample:
    """The Sample every counting builder returns; the count itself is the target."""
    return Sample(
        sample_id=sample_id or _count_id(task, dataset, image_id, category_name),
        task=task,
        kind=kind,
        image=_image(dataset, image_id, image_file),
        question=question,
        answer=answer,
        target=str(len(grid)),
        dataset=dataset,
        image_id=str(image_id),
        annotation_ids=tuple(annotation_ids),
    )


def build_count_atomic(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    category_name: str,
    boxes: Sequence[BoxInput],
    rng: np.random.Generator,
    image_size: tuple[int, int] | None = None,
    annotation_ids: Sequence[int] = (),
    negative: bool = False,
    not_exhaustive: bool = False,
    max_count: int = MAX_COUNT,
    sample_id: str | None = None,
) -> Sample:
    """"Find the <plural> ..." (phrasing drawn by ``rng``) -> one box token string per line.

    A verified negative category (``negative=True``, no boxes) is answered with
    "There are no <plural> in the image.". Skips (SkipSample) categories that are not
    exhaustively annotated in the image, counts above ``max_count``, and boxes that
    collapse on the 336 grid.
    """
    grid = _count_boxes(
        category_name, boxes, image_size, negative=negative, not_exhaustive=not_exhaustive, max_count=max_count
    )
    plural = pluralize(category_name)
    template = T.COUNT_ATOMIC_TEMPLATES[int(rng.integers(len(T.COUNT_ATOMIC_TEMPLATES)))]
    answer = "\n".join(encode_box(b) for b in grid) if grid else T.COUNT_NONE_ANSWER.format(plural=plural)
    return _count_sample(
        "count_atomic", "atomic", template.format(plural=plural), answer, grid,
        dataset=dataset, image_id=image_id, image_file=image_file, category_name=category_name,
        annotation_ids=annotation_ids, sample_id=sample_id,
    )


def build_count_cot(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    category_name: str,
    boxes: Sequence[BoxInput],
    image_size: tuple[int, int] | None = None,
    annotation_ids: Sequence[int] = (),
    negative: bool = False,
    not_exhaustive: bool = False,
    max_count: int = MAX_COUNT,
    sample_id: str | None = None,
) -> Sample:
    """"How many <plural> ...?" + locate-first instruction -> box lines, then "There are N <plural>."."""
    grid = _count_boxes(
        category_name, boxes, image_size, negative=negative, not_exhaustive=not_exhaustive, max_count=max_count
    )
    plural = pluralize(category_name)
    lines = [encode_box(b) for b in grid] + [count_sentence(len(grid), category_name)]
    question = T.COUNT_QUESTION.format(plural=plural) + "\n" + T.COUNT_COT_INSTRUCTION.format(plural=plural)
    return _count_sample(
        "count_cot", "cot", question, "\n".join(lines), grid,
        dataset=dataset, image_id=image_id, image_file=image_file, category_name=category_name,
        annotation_ids=annotation_ids, sample_id=sample_id,
    )


def build_count_direct(
    *,
    dataset: str,
    image_id: str,
    image_file: str,
    category_name: str,
    boxes: Sequence[BoxInput],
    image_size: tuple[int, int] | None = None,
    annotation_ids: Sequence[int] = (),
    negative: bool = False,
    not_exhaustive: bool = False,
    max_count: int = MAX_COUNT,
    sample_id: str | None = None,
) -> Sample:
    """"How many <plural> are in the image?" -> the count as a number ("3")."""
    grid = _count_boxes(
        category_name, boxes, image_size, negative=negative, not_exhaustive=not_exhaustive, max_count=max_count
    )
    return _count_sample(
        "count_direct", "direct", T.COUNT_QUESTION.format(plural=pluralize(category_name)), str(len(grid)), grid,
        dataset=dataset, image_id=image_id, image_file=image_file, category_name=category_name,
        annotation_ids=annotation_ids, sample_id=sample_id,
    )


# ---------------------------------------------------------------------------- grounding


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
    return Sample(
        sample_id=sample_id or make_sample_id("ground_atomic", dataset, image_id, ref_id if ref_id is not None else expr),
        task="ground_atomic",
        kind="atomic",
        image=_image(dataset, image_id, image_file),
        question=T.GROUND_QUESTION.format(expression=expr),
        answer=tokens,
        target=tokens,
        dataset=dataset,
        image_id=str(image_id),
        annotation_ids=() if annotation_id is None else (annotation_id,),
        ref_id=ref_id,
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
        T.OBJECT_LOCATION.format(expression=e, box=encode_box(g)) for e, g in ((expr_a, box_a), (expr_b, box_b))
    )
    answer = (
        located
        + ". "
        + T.DEPTH_MAP_SENTENCE.format(depth=depth_string(codes))
        + " "
        + T.GROUND_DEPTH_CONCLUSION.format(nearer=nearer)
    )
    ids = tuple(x.annotation_id for x in (a, b) if x.annotation_id is not None)
    parts = [x.ref_id if x.ref_id is not None else clean_expression(x.expression) for x in (a, b)]
    return Sample(
        sample_id=sample_id or make_sample_id("ground_depth", dataset, image_id, *parts),
        task="ground_depth",
        kind="cot",
        image=_image(dataset, image_id, image_file),
        question=T.GROUND_DEPTH_QUESTION.format(first=expr_a, second=expr_b),
        answer=answer,
        target=nearer,
        dataset=dataset,
        image_id=str(image_id),
        annotation_ids=ids,
        ref_id=a.ref_id,
        depth_token_version=depth_token_version,
    )
