"""Marked-point images for relative depth: choose points, draw them, read the answer.

BLINK's relative-depth task (and Aurora's HardBLINK variants with 3-5 points) shows an
image with small red circles, each labelled by a letter, and asks which point is the
closest to the camera. This module makes such images from an RGB image and its
pseudo-depth map, both at the 336x336 grid the model sees.

Depth follows Depth Anything's convention: relative inverse depth stored as uint8,
larger = nearer. So the closest point is the one with the *largest* depth value.

Pure numpy + OpenCV; no dataset or pipeline code here.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal, Sequence

import cv2
import numpy as np

from perception_tokens.vocab import PIXEL_GRID

LETTERS = string.ascii_uppercase[:5]  # A..E: BLINK has 2 points, HardBLINK up to 5
MIN_POINTS, MAX_POINTS = 2, len(LETTERS)

# Drawing style. Colours are RGB because every array in this project is RGB
# (OpenCV only ever sees them as plain 3-channel arrays, so no BGR swap is needed).
MARKER_RGB = (255, 0, 0)
LABEL_FILL_RGB = (255, 255, 255)
LABEL_OUTLINE_RGB = (20, 20, 20)
LABEL_TEXT_RGB = (0, 0, 0)
CIRCLE_RADIUS = 6
CIRCLE_THICKNESS = 2
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_FONT_SCALE = 0.45
LABEL_FONT_THICKNESS = 1
LABEL_PADDING = 3  # pixels between the letter and the box outline
LABEL_GAP = 3  # pixels between the circle and the label box

MarkerVariant = Literal["beside", "center"]


class PointSamplingError(ValueError):
    """No valid set of points exists (or none was found); ``reason`` is recorded as a reject."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MarkedPoint:
    """A labelled point on the 336 grid; ``depth_value`` is the uint8 depth there (larger = nearer)."""

    letter: str
    x: int
    y: int
    depth_value: int


@dataclass(frozen=True)
class LabelBox:
    """Where a letter's label box was drawn: inclusive pixel corners."""

    letter: str
    x1: int
    y1: int
    x2: int
    y2: int

    def inside(self, width: int, height: int) -> bool:
        return 0 <= self.x1 <= self.x2 < width and 0 <= self.y1 <= self.y2 < height


# ---------------------------------------------------------------------------- sampling


def _check_depth_map(depth_uint8: np.ndarray) -> None:
    if not isinstance(depth_uint8, np.ndarray) or depth_uint8.ndim != 2:
        raise ValueError(f"depth map must be a 2-D array, got {getattr(depth_uint8, 'shape', type(depth_uint8))}")
    if depth_uint8.shape != (PIXEL_GRID, PIXEL_GRID):
        raise ValueError(f"depth map must be {PIXEL_GRID}x{PIXEL_GRID} (the token grid), got {depth_uint8.shape}")
    if depth_uint8.dtype != np.uint8:
        raise ValueError(f"depth map must be uint8 (Depth Anything PNG convention), got {depth_uint8.dtype}")


def local_depth_range(depth_uint8: np.ndarray, window: int) -> np.ndarray:
    """Max minus min depth in a ``window`` x ``window`` neighbourhood of every pixel.

    A point on a depth edge (object boundary) has no single depth: the circle drawn
    around it covers both sides. Points are only placed where this range is small.
    """
    kernel = np.ones((window, window), np.uint8)
    hi = cv2.dilate(depth_uint8, kernel)
    lo = cv2.erode(depth_uint8, kernel)
    return hi.astype(np.int16) - lo.astype(np.int16)


def choose_points(
    depth_uint8: np.ndarray,
    n_points: int,
    rng: np.random.Generator,
    *,
    margin: int = 30,
    min_separation: int = 40,
    min_depth_gap: int = 25,
    smooth_window: int = 7,
    max_local_range: int | None = 24,
    max_restarts: int = 200,
) -> list[MarkedPoint]:
    """Pick ``n_points`` points with clearly different depths, away from borders and each other.

    Every point lies at least ``margin`` pixels from each border, every pair is at least
    ``min_separation`` pixels apart (Euclidean) and differs by at least ``min_depth_gap``
    in depth value, so the closest point is unambiguous. When ``max_local_range`` is set,
    points also avoid depth edges (depth range within ``smooth_window`` pixels at most
    ``max_local_range``). Letters A, B, C... follow the order the points were drawn in,
    which is random, so the answer letter is not tied to depth order or position.

    Sampling: draw each next point uniformly among the pixels still valid given the
    points already chosen (vectorised mask), restarting up to ``max_restarts`` times
    when a partial set cannot be completed. Deterministic for a given ``rng`` state.

    Raises PointSamplingError (with ``reason``) when the map cannot hold such points
    (e.g. a flat map) or no valid set was found; ValueError for malformed arguments.
    """
    _check_depth_map(depth_uint8)
    if not MIN_POINTS <= n_points <= MAX_POINTS:
        raise ValueError(f"n_points must be in {MIN_POINTS}..{MAX_POINTS}, got {n_points}")
    if margin < 0 or 2 * margin >= PIXEL_GRID:
        raise ValueError(f"margin {margin} leaves no room on a {PIXEL_GRID} grid")

    h, w = depth_uint8.shape
    ys, xs = np.mgrid[margin : h - margin, margin : w - margin]
    ys, xs = ys.ravel(), xs.ravel()
    depths = depth_uint8[ys, xs].astype(np.int32)
    if max_local_range is not None:
        smooth = local_depth_range(depth_uint8, smooth_window)[ys, xs] <= max_local_range
        ys, xs, depths = ys[smooth], xs[smooth], depths[smooth]
    if depths.size == 0:
        raise PointSamplingError("no pixel inside the margins lies on a smooth depth region")

    # Quick infeasibility test: n points pairwise >= gap apart need a depth range of (n-1)*gap.
    spread = int(depths.max() - depths.min())
    needed = (n_points - 1) * min_depth_gap
    if spread < needed:
        raise PointSamplingError(
            f"depth range {spread} inside the margins is below {needed} "
            f"needed for {n_points} points {min_depth_gap} apart (flat map?)"
        )

    min_sep_sq = min_separation * min_separation
    for _ in range(max_restarts):
        valid = np.ones(depths.size, dtype=bool)
        chosen: list[int] = []
        for _k in range(n_points):
            candidates = np.flatnonzero(valid)
            if candidates.size == 0:
                break
            idx = int(candidates[rng.integers(candidates.size)])
            chosen.append(idx)
            valid &= (xs - xs[idx]) ** 2 + (ys - ys[idx]) ** 2 >= min_sep_sq
            valid &= np.abs(depths - depths[idx]) >= min_depth_gap
        if len(chosen) == n_points:
            return [
                MarkedPoint(LETTERS[i], int(xs[j]), int(ys[j]), int(depths[j])) for i, j in enumerate(chosen)
            ]
    raise PointSamplingError(
        f"no set of {n_points} points with separation {min_separation} and depth gap "
        f"{min_depth_gap} found in {max_restarts} tries"
    )


def closest_point(points: Sequence[MarkedPoint]) -> str:
    """Letter of the point nearest the camera: the largest depth value (Depth Anything convention).

    Raises ValueError on an empty list or a tie for the largest value (no single answer).
    """
    if not points:
        raise ValueError("no points")
    best = max(p.depth_value for p in points)
    winners = [p.letter for p in points if p.depth_value == best]
    if len(winners) > 1:
        raise ValueError(f"points {winners} tie for the closest depth value {best}")
    return winners[0]


# ---------------------------------------------------------------------------- drawing


def _label_size(letter: str) -> tuple[int, int, int]:
    """(box width, box height, text baseline) of a letter's label box, outline included."""
    (tw, th), baseline = cv2.getTextSize(letter, LABEL_FONT, LABEL_FONT_SCALE, LABEL_FONT_THICKNESS)
    return tw + 2 * LABEL_PADDING, th + baseline + 2 * LABEL_PADDING, baseline


def _place_label(point: MarkedPoint, bw: int, bh: int, variant: MarkerVariant, width: int, height: int):
    """Top-left corner of the label box, shifted so the whole box stays inside the image."""
    reach = CIRCLE_RADIUS + CIRCLE_THICKNESS + LABEL_GAP
    if variant == "beside":
        # Right of the circle, vertically centred; mirror to the left near the right border.
        x1 = point.x + reach
        if x1 + bw > width:
            x1 = point.x - reach - bw
        y1 = point.y - bh // 2
    elif variant == "center":
        # Centred above the circle; below it when the top border is too close.
        x1 = point.x - bw // 2
        y1 = point.y - reach - bh
        if y1 < 0:
            y1 = point.y + reach
    else:
        raise ValueError(f"unknown marker variant {variant!r} (expected 'beside' or 'center')")
    x1 = min(max(0, x1), width - bw)
    y1 = min(max(0, y1), height - bh)
    return x1, y1


def draw_markers(
    rgb: np.ndarray,
    points: Sequence[MarkedPoint],
    *,
    variant: MarkerVariant = "beside",
) -> tuple[np.ndarray, list[LabelBox]]:
    """Draw BLINK-style markers: a red circle on each point and its letter in a white label box.

    Both variants centre the red circle on the point, so the marked pixel is the one whose
    depth is asked about. ``"beside"`` puts the label box to the right of the circle
    (BLINK style); ``"center"`` puts it centred directly above the circle (HardBLINK's
    "pointscenter" sets). Label boxes are white with a dark outline and a dark letter, and
    are shifted when needed so they lie entirely inside the image.

    Returns a new uint8 RGB image (input untouched) and the label boxes as drawn.
    """
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {getattr(rgb, 'shape', None)}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {rgb.dtype}")
    h, w = rgb.shape[:2]
    for p in points:
        if not (0 <= p.x < w and 0 <= p.y < h):
            raise ValueError(f"point {p.letter} at ({p.x},{p.y}) lies outside the {w}x{h} image")
    out = np.ascontiguousarray(rgb.copy())
    for p in points:
        cv2.circle(out, (p.x, p.y), CIRCLE_RADIUS, MARKER_RGB, CIRCLE_THICKNESS, lineType=cv2.LINE_AA)
    boxes: list[LabelBox] = []
    # Labels after all circles, so no circle is drawn over a letter.
    for p in points:
        bw, bh, baseline = _label_size(p.letter)
        x1, y1 = _place_label(p, bw, bh, variant, w, h)
        x2, y2 = x1 + bw - 1, y1 + bh - 1
        cv2.rectangle(out, (x1, y1), (x2, y2), LABEL_FILL_RGB, thickness=-1)
        cv2.rectangle(out, (x1, y1), (x2, y2), LABEL_OUTLINE_RGB, thickness=1)
        origin = (x1 + LABEL_PADDING, y2 - LABEL_PADDING - baseline + 1)
        cv2.putText(
            out, p.letter, origin, LABEL_FONT, LABEL_FONT_SCALE, LABEL_TEXT_RGB, LABEL_FONT_THICKNESS, cv2.LINE_AA
        )
        boxes.append(LabelBox(p.letter, x1, y1, x2, y2))
    return out, boxes
