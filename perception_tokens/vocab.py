"""The perception-token vocabulary: the one place that knows the token strings.

Strings are exactly Aurora's so its released data and checkpoints stay usable:
``<DEPTH_START>`` + 100 x ``<DEPTH_k>`` (k in 0..127, row-major 10x10) + ``<DEPTH_END>``
with no spaces, and boxes as ``(<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>)`` on a
336x336 grid. Token *ids* always come from a tokenizer; this module only deals in
strings, codes and coordinates. The list of token kinds (and so the full vocabulary) is
:mod:`perception_tokens.token_kinds`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Sequence

DEPTH_START = "<DEPTH_START>"
DEPTH_END = "<DEPTH_END>"
NUM_DEPTH_CODES = 128
DEPTH_GRID = 10
DEPTH_SPAN = DEPTH_GRID * DEPTH_GRID  # codes per depth map
PIXEL_GRID = 336  # boxes are expressed on a 336x336 canvas (LLaVA-1.5's input size)


class TokenParseError(ValueError):
    """A perception-token string that does not follow the vocabulary; ``reason`` says why."""

    def __init__(self, reason: str, text: str = ""):
        super().__init__(reason if not text else f"{reason}: {text[:120]!r}")
        self.reason = reason


def depth_code_token(code: int) -> str:
    return f"<DEPTH_{code}>"


def pixel_token(value: int) -> str:
    return f"<PIXEL_{value}>"


def depth_tokens() -> list[str]:
    """Depth tokens in vocabulary order: start, end, then codes 0..127 (Aurora's order)."""
    return [DEPTH_START, DEPTH_END] + [depth_code_token(k) for k in range(NUM_DEPTH_CODES)]


def pixel_tokens() -> list[str]:
    return [pixel_token(v) for v in range(PIXEL_GRID)]


def all_tokens() -> list[str]:
    """Every perception token of every registered kind (:mod:`perception_tokens.token_kinds`),
    in the order they are added to a tokenizer (depth, then pixel)."""
    from perception_tokens.token_kinds import kinds  # the registry imports this module's codecs

    return [t for kind in kinds() for t in kind.tokens]


def skill_tokens(skills) -> list[str]:
    """The tokens of the given skills (token kinds), in Aurora's add order: ``"depth"`` ->
    start, end, codes (train.py:934, ids 32000, 32001, 32002+k on LLaVA-1.5's 32000-token
    vocabulary); ``"pixel"`` -> ``<PIXEL_0..335>`` (train.py:938). Both: depth first, as the reference."""
    from perception_tokens.token_kinds import kinds

    known = [kind.name for kind in kinds()]
    unknown = set(skills) - set(known)
    if unknown:
        raise ValueError(f"unknown perception skills {sorted(unknown)}; expected some of {known}")
    return [t for kind in kinds() if kind.name in skills for t in kind.tokens]


def skills_in_text(texts) -> list[str]:
    """Which skills' tokens occur in ``texts`` (e.g. a curriculum's answers): a run adds only those."""
    from perception_tokens.token_kinds import kinds

    found = set()
    for t in texts:
        found.update(kind.name for kind in kinds() if kind.marker in t)
    return [kind.name for kind in kinds() if kind.name in found]


def vocabulary_hash(tokens=None) -> str:
    """Identity of a vocabulary (order included; default: every token): recorded beside adapters and datasets."""
    return hashlib.sha256("\n".join(all_tokens() if tokens is None else tokens).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- depth

_DEPTH_CODE_RE = re.compile(r"<DEPTH_(\d+)>")
_DEPTH_SPAN_RE = re.compile(re.escape(DEPTH_START) + r"(.*?)" + re.escape(DEPTH_END), re.S)


def encode_depth(codes: Sequence[int]) -> str:
    """100 codes (row-major 10x10) -> ``<DEPTH_START><DEPTH_k>...<DEPTH_END>``."""
    codes = [int(c) for c in codes]
    if len(codes) != DEPTH_SPAN:
        raise TokenParseError(f"expected {DEPTH_SPAN} depth codes, got {len(codes)}")
    bad = [c for c in codes if not 0 <= c < NUM_DEPTH_CODES]
    if bad:
        raise TokenParseError(f"depth code {bad[0]} outside 0..{NUM_DEPTH_CODES - 1}")
    return DEPTH_START + "".join(depth_code_token(c) for c in codes) + DEPTH_END


def decode_depth(text: str) -> list[int]:
    """Parse exactly one depth span (and nothing else) back to its 100 codes."""
    text = text.strip()
    if not text.startswith(DEPTH_START):
        raise TokenParseError("missing <DEPTH_START>", text)
    if not text.endswith(DEPTH_END):
        raise TokenParseError("missing <DEPTH_END>", text)
    body = text[len(DEPTH_START) : -len(DEPTH_END)]
    codes = [int(m) for m in _DEPTH_CODE_RE.findall(body)]
    leftover = _DEPTH_CODE_RE.sub("", body)
    if leftover:
        raise TokenParseError(f"unexpected text inside depth span: {leftover[:40]!r}", text)
    if len(codes) != DEPTH_SPAN:
        raise TokenParseError(f"expected {DEPTH_SPAN} depth codes, got {len(codes)}", text)
    bad = [c for c in codes if c >= NUM_DEPTH_CODES]
    if bad:
        raise TokenParseError(f"depth code {bad[0]} outside 0..{NUM_DEPTH_CODES - 1}", text)
    return codes


def find_depth_spans(text: str) -> list[str]:
    """Every ``<DEPTH_START>...<DEPTH_END>`` substring of a longer text (e.g. a CoT answer)."""
    return [m.group(0) for m in _DEPTH_SPAN_RE.finditer(text)]


# ---------------------------------------------------------------------------- boxes

_BOX_RE = re.compile(r"\(<PIXEL_(\d+)>,<PIXEL_(\d+)>,<PIXEL_(\d+)>,<PIXEL_(\d+)>\)")


@dataclass(frozen=True)
class GridBox:
    """A box on the 336x336 token grid, integer corners, x1 < x2 and y1 < y2."""

    x1: int
    y1: int
    x2: int
    y2: int

    def __post_init__(self) -> None:
        for v in (self.x1, self.y1, self.x2, self.y2):
            if not 0 <= v < PIXEL_GRID:
                raise TokenParseError(f"pixel {v} outside 0..{PIXEL_GRID - 1}")
        if not (self.x1 < self.x2 and self.y1 < self.y2):
            raise TokenParseError(f"degenerate box {self.as_tuple()}: need x1<x2 and y1<y2")

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x1, self.y1, self.x2, self.y2)


def box_to_grid(bbox_xywh: Sequence[float], width: int, height: int) -> GridBox:
    """COCO/LVIS ``[x, y, w, h]`` in image pixels -> a GridBox on the 336 grid.

    Corners are scaled, rounded and clamped to the grid; a box that collapses after
    rounding (or lies outside the image) raises TokenParseError with the reason.
    """
    x, y, w, h = (float(v) for v in bbox_xywh)
    if width <= 0 or height <= 0:
        raise TokenParseError(f"image size {width}x{height} is not positive")
    if w <= 0 or h <= 0:
        raise TokenParseError(f"box {list(bbox_xywh)} has non-positive width or height")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise TokenParseError(f"box {list(bbox_xywh)} lies outside the {width}x{height} image")
    sx, sy = (PIXEL_GRID - 1) / width, (PIXEL_GRID - 1) / height
    clamp = lambda v: min(PIXEL_GRID - 1, max(0, int(round(v))))  # noqa: E731
    return GridBox(clamp(x * sx), clamp(y * sy), clamp((x + w) * sx), clamp((y + h) * sy))


def encode_box(box: GridBox | Sequence[int]) -> str:
    b = box if isinstance(box, GridBox) else GridBox(*[int(v) for v in box])
    return "(" + ",".join(pixel_token(v) for v in b.as_tuple()) + ")"


def decode_box(text: str) -> GridBox:
    m = _BOX_RE.fullmatch(text.strip())
    if not m:
        raise TokenParseError("not a box of the form (<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>)", text)
    return GridBox(*(int(g) for g in m.groups()))


def find_boxes(text: str) -> list[GridBox]:
    """Every well-formed box token group in a longer text."""
    return [GridBox(*(int(g) for g in m.groups())) for m in _BOX_RE.finditer(text)]
