"""Depth tasks: the depth map itself (atomic), and which marked point is closest (cot, direct)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Sequence

from perception_tokens.curriculum import templates
from perception_tokens.curriculum.sample import Sample
from perception_tokens.curriculum.tasks.common import DepthInput, depth_string, point_string, task_sample
from perception_tokens.markers import MarkedPoint, closest_point


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
    return task_sample(
        "depth_atomic", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id,
        question=templates.DEPTH_ATOMIC_QUESTION, answer=depth, target=depth, depth_token_version=depth_token_version,
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
        lines = [templates.POINT_BOTTLENECK.format(letter=p.letter, point=point_string(p.x, p.y)) for p in ordered]
        answer = "\n".join(lines + [depth, templates.CHOICE_ANSWER.format(letter=letter)])
    else:
        located = ", ".join(
            templates.POINT_LOCATION.format(letter=p.letter, point=point_string(p.x, p.y)) for p in ordered
        )
        answer = (
            located
            + ". "
            + templates.DEPTH_MAP_SENTENCE.format(depth=depth)
            + " "
            + templates.DEPTH_CONCLUSION.format(letter=letter)
        )
    id_parts = [PurePosixPath(image_file).stem, *(["bottleneck"] if bottleneck else [])]
    return task_sample(
        "depth_cot", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id, id_parts=id_parts,
        question=templates.DEPTH_COT_QUESTION, answer=answer, target=letter, depth_token_version=depth_token_version,
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
    return task_sample(
        "depth_direct", dataset=dataset, image_id=image_id, image_file=image_file, sample_id=sample_id,
        id_parts=[PurePosixPath(image_file).stem],
        question=templates.DEPTH_POINTS_QUESTION, answer=templates.CHOICE_ANSWER.format(letter=letter), target=letter,
    )
