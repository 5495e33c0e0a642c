"""Aurora's marked-point images, exactly as its notebook makes them.

Reference: Aurora-perception ``AiT/vae/add_marks_ade.ipynb``. Cell 2 samples the points
(``random`` module, no seed in the notebook), cell 4 draws them with PIL and shuffles the
letters. The functions here follow those cells statement by statement so that, given the
same ``random.Random`` state and the same 336x336 depth array, they return the same points,
the same letters and the same pixels:

* points: ``x, y = randint(0, 300)`` each; a point is kept when its depth is not 0, it lies
  at least 20 px (Euclidean) from every kept point and differs by at least 20 in depth
  from every kept point; 2-5 points (``random.choice([2, 3, 4, 5])`` per attempt), up to
  10,000 draws per attempt and 10,000 attempts; kept points are sorted by depth (ascending).
* letters ``A..`` are shuffled over the depth-sorted points; the answer is the letter of the
  largest depth (Depth Anything: larger = nearer).
* drawing: a red circle (radius 4, width 2) on the point and the letter in white on a black
  box whose text origin is ``(x, y - 25)``, PIL's default font, box margin 1 px.

The project's own marker style (bigger circle, label beside or centred, points away from
borders) lives in :mod:`perception_tokens.markers`; this module is the ``aurora`` style.
Pure PIL + numpy; no pipeline code.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from perception_tokens.markers import MarkedPoint, PointSamplingError

GRID = 336  # the notebook resizes every image and depth map to 336 x 336
COORD_MAX = 300  # random.randint(0, 300) for x and y (add_marks_ade.ipynb cell 2)
MIN_DISTANCE = 20  # pixels between points (cell 2: min_distance = 20)
MIN_DEPTH_GAP = 20  # depth values between points (cell 2: abs(...) < 20 rejects)
POINT_COUNTS = (2, 3, 4, 5)  # cell 2: random.choice([2,3,4,5])
MAX_ATTEMPTS = 10_000  # cell 2: max_attempts
MAX_POINT_ATTEMPTS = 10_000  # cell 2: max_point_attempts
LETTERS = ("A", "B", "C", "D", "E")
CIRCLE_RADIUS = 4  # cell 4: add_point radius
CIRCLE_WIDTH = 2
LABEL_OFFSET_Y = 25  # cell 4: text_y = center_y - 25
LABEL_MARGIN = 1  # cell 4: background_margin
FONT_SIZE = 12  # cell 4: draw_markers(font_size=12) -> box height


@dataclass(frozen=True)
class AuroraMarks:
    """One image's marks as ``point_label_mappings.json`` holds them: letters in drawing
    (depth-ascending) order, coordinates on the 336 grid, depths as floats."""

    letters: tuple[str, ...]
    coordinates: tuple[tuple[int, int], ...]
    depths: tuple[float, ...]

    @property
    def answer(self) -> str:
        """Letter of the largest depth (``depths.index(max(depths))``, cell 4)."""
        return self.letters[self.depths.index(max(self.depths))]

    def mapping(self) -> dict[str, dict]:
        """The notebook's ``point_label_mapping`` entry for this image (insertion order kept)."""
        return {l: {"coordinate": [x, y], "depth": d} for l, (x, y), d in zip(self.letters, self.coordinates, self.depths)}

    def points(self) -> list[MarkedPoint]:
        return [MarkedPoint(l, x, y, int(d)) for l, (x, y), d in zip(self.letters, self.coordinates, self.depths)]


def resize_like_notebook(data: bytes | Image.Image, mode: str | None = None) -> Image.Image:
    """``Image.open(...)[.convert(mode)].resize((336, 336))`` with PIL's default resampling."""
    img = Image.open(io.BytesIO(data)) if isinstance(data, (bytes, bytearray)) else data
    if mode:
        img = img.convert(mode)
    return img.resize((GRID, GRID))


def depth_array(depth_png: bytes) -> np.ndarray:
    """The notebook's depth array: PNG -> 'L' -> 336x336 -> float64 (cell 2)."""
    return np.array(resize_like_notebook(depth_png, "L"), dtype=np.float64)


def sample_points(depth: np.ndarray, rng: random.Random, *, counts: Sequence[int] = POINT_COUNTS,
                  max_attempts: int = MAX_ATTEMPTS, max_point_attempts: int = MAX_POINT_ATTEMPTS):
    """Cell 2 for one image: ``(points, depths)`` sorted by depth, or PointSamplingError.

    Consumes ``rng`` exactly as the notebook's loop consumes the ``random`` module.
    """
    if depth.shape != (GRID, GRID):
        raise ValueError(f"depth array must be {GRID}x{GRID}, got {depth.shape}")
    for _attempt in range(max_attempts):
        points: list[tuple[int, int]] = []
        depths: list[float] = []
        point_attempts = 0
        point_length = rng.choice(list(counts))
        while len(points) < point_length and point_attempts < max_point_attempts:
            x = rng.randint(0, COORD_MAX)
            y = rng.randint(0, COORD_MAX)
            current = float(depth[y, x])
            valid = current != 0
            for px, py in points:
                if np.sqrt((x - px) ** 2 + (y - py) ** 2) < MIN_DISTANCE:
                    valid = False
                    break
            if valid and points:
                valid = all(abs(current - d) >= MIN_DEPTH_GAP for d in depths)
            if valid:
                points.append((x, y))
                depths.append(current)
            point_attempts += 1
        if len(points) == point_length:
            order = np.argsort(depths)  # numpy's default quicksort, as the notebook
            return [points[i] for i in order], [depths[i] for i in order]
    raise PointSamplingError(f"no set of points {MIN_DISTANCE} px and {MIN_DEPTH_GAP} depth apart in {max_attempts} attempts")


def assign_letters(points: Sequence[tuple[int, int]], depths: Sequence[float], rng: random.Random) -> AuroraMarks:
    """Cell 4: ``labels = ['A'..'E'][:n]; random.shuffle(labels)``; label i goes to point i."""
    labels = list(LETTERS[: len(depths)])
    rng.shuffle(labels)
    return AuroraMarks(tuple(labels), tuple((int(x), int(y)) for x, y in points), tuple(float(d) for d in depths))


def mark_images(depths: Sequence[np.ndarray], rng: random.Random) -> list[AuroraMarks | PointSamplingError]:
    """The notebook's order over several images: all points first (cell 2), then all letters (cell 4).

    With one image this is ``sample_points`` then ``assign_letters`` on the same ``rng``.
    An image without a valid point set yields its PointSamplingError (the notebook skips it).
    """
    sampled = []
    for d in depths:
        try:
            sampled.append(sample_points(d, rng))
        except PointSamplingError as exc:
            sampled.append(exc)
    return [s if isinstance(s, PointSamplingError) else assign_letters(*s, rng) for s in sampled]


def draw_marks(image: Image.Image, marks: AuroraMarks, font_size: int = FONT_SIZE) -> Image.Image:
    """Cell 4's ``add_point`` for every mark, in mapping order, on a copy of a 336x336 image."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    for letter, (cx, cy) in zip(marks.letters, marks.coordinates):
        r = CIRCLE_RADIUS
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline="red", width=CIRCLE_WIDTH)
        text_w = draw.textlength(letter, font=font)
        tx, ty = cx, cy - LABEL_OFFSET_Y
        m = LABEL_MARGIN
        draw.rectangle([tx - m, ty - m, tx + text_w + m, ty + font_size + m], fill="black")
        draw.text((tx, ty), letter, font=font, fill="white")
    return out
