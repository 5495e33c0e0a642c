"""VPT's Region Selection Tokens (arXiv 2502.17425, Sec. 3.1): a region of a k x k grid as six tokens.

``<REGION_START><REGION_X_a><REGION_Y_b><REGION_X_c><REGION_Y_d><REGION_END>`` names the cells
(a, b) (top-left) and (c, d) (bottom-right), both included, with a <= c and b <= d. The image
(h x w pixels) is divided evenly into k x k rectangular cells; a region's pixel box is the union
of its cells. Token strings only: ids come from a tokenizer. The kind enters a vocabulary only
when a config asks for it (:func:`perception_tokens.token_kinds.vpt_kinds`), so the default
vocabulary (and its hash) is unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from perception_tokens.vocab import TokenParseError

REGION_START = "<REGION_START>"
REGION_END = "<REGION_END>"
REENCODE_CONTROL = "<REENCODE_CONTROL>"  # the paper's <Re-Encoding Control> token
DEFAULT_GRID = 8  # Sec. 3.1: "In our implementation, we set k = 8"; Table 4 compares 4, 8, 16
REGION_TOKENS = 6  # start, x_min, y_min, x_max, y_max, end


def x_token(cell: int) -> str:
    return f"<REGION_X_{cell}>"


def y_token(cell: int) -> str:
    return f"<REGION_Y_{cell}>"


def region_tokens(grid: int) -> list[str]:
    """The kind's vocabulary, in add order: start, end, x cells, y cells."""
    if grid < 1:
        raise ValueError(f"region grid k must be >= 1, got {grid}")
    return [REGION_START, REGION_END, *(x_token(c) for c in range(grid)), *(y_token(c) for c in range(grid))]


def grid_in_vocabulary(vocabulary) -> int:
    """k: how many ``<REGION_X_c>`` / ``<REGION_Y_c>`` pairs a tokenizer's vocabulary holds (0: none)."""
    k = 0
    while x_token(k) in vocabulary and y_token(k) in vocabulary:
        k += 1
    return k


@dataclass(frozen=True)
class RegionCells:
    """A region on the k x k grid: inclusive cell corners, x0 <= x1 and y0 <= y1."""

    x0: int
    y0: int
    x1: int
    y1: int
    grid: int = DEFAULT_GRID

    def __post_init__(self) -> None:
        for v in (self.x0, self.y0, self.x1, self.y1):
            if not 0 <= v < self.grid:
                raise TokenParseError(f"region cell {v} outside 0..{self.grid - 1}")
        if self.x0 > self.x1 or self.y0 > self.y1:
            raise TokenParseError(f"region {self.as_tuple()} has x_max < x_min or y_max < y_min")

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    def pixel_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` in pixels (right/bottom exclusive, PIL's crop box) of the
        cells' union: cell c spans ``[floor(c*w/k), floor((c+1)*w/k))``. An image with fewer pixels than
        cells still gives a crop of at least one pixel a side (PIL would give an empty image)."""
        k = self.grid
        left, top = min(self.x0 * width // k, width - 1), min(self.y0 * height // k, height - 1)
        return (left, top, max(left + 1, (self.x1 + 1) * width // k), max(top + 1, (self.y1 + 1) * height // k))


def box_to_cells(box_xyxy, width: int, height: int, grid: int = DEFAULT_GRID) -> RegionCells:
    """A pixel box ``(x0, y0, x1, y1)`` -> the smallest region of cells that covers it."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise TokenParseError(f"box {[x0, y0, x1, y1]} is empty or outside the {width}x{height} image")
    cell = lambda v, size: min(grid - 1, int(v * grid // size))  # noqa: E731
    # the last pixel of the box is at x1 - 1: an edge exactly on a cell border stays in the cell before
    return RegionCells(cell(x0, width), cell(y0, height), cell(x1 - 1e-9, width), cell(y1 - 1e-9, height), grid)


def encode_region(region: RegionCells) -> str:
    r = region
    return REGION_START + x_token(r.x0) + y_token(r.y0) + x_token(r.x1) + y_token(r.y1) + REGION_END


_REGION_RE = re.compile(r"<REGION_START><REGION_X_(\d+)><REGION_Y_(\d+)><REGION_X_(\d+)><REGION_Y_(\d+)><REGION_END>")


def decode_region(text: str, grid: int = DEFAULT_GRID) -> RegionCells:
    m = _REGION_RE.fullmatch(text.strip())
    if not m:
        raise TokenParseError("not a region of the form <REGION_START><REGION_X_a><REGION_Y_b><REGION_X_c><REGION_Y_d>"
                              "<REGION_END>", text)
    return RegionCells(*(int(g) for g in m.groups()), grid=grid)


def find_regions(text: str, grid: int = DEFAULT_GRID) -> list[RegionCells]:
    """Every well-formed region in a longer text (an invalid one raises TokenParseError)."""
    return [RegionCells(*(int(g) for g in m.groups()), grid=grid) for m in _REGION_RE.finditer(text)]
