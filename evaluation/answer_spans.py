"""The perception tokens in a generated answer: whitespace a decoder added removed, depth
spans (each checked) and box groups found."""

from __future__ import annotations

import re
from typing import Any

from perception_tokens.vocab import TokenParseError, decode_depth, find_depth_spans

_TIGHTEN_RE = re.compile(r"\s+(?=<(?:DEPTH|PIXEL)_)|(?<=>)\s+(?=[,)])|(?<=[(,])\s+(?=<PIXEL_)")


def tighten(text: str) -> str:
    """Remove whitespace a decoder put around perception tokens, so vocab regexes match."""
    return _TIGHTEN_RE.sub("", text)


def perception_spans(text: str) -> dict[str, Any]:
    """Depth spans and boxes found in an answer, and whether each depth span is valid."""
    spans = find_depth_spans(text)
    valid = []
    for s in spans:
        try:
            decode_depth(s)
            valid.append(True)
        except TokenParseError:
            valid.append(False)
    return {
        "depth_spans": spans,
        "depth_spans_valid": valid,
        "boxes": _boxes(text),
    }


_BOX_GROUP_RE = re.compile(r"\(<PIXEL_(\d+)>,<PIXEL_(\d+)>,<PIXEL_(\d+)>,<PIXEL_(\d+)>\)")


def _boxes(text: str) -> list[list[int]]:
    """Every box group in the text as [x1, y1, x2, y2], degenerate ones included.

    (An unconstrained model may write x2 < x1; that is still what it answered.)
    """
    return [[int(g) for g in m.groups()] for m in _BOX_GROUP_RE.finditer(text)]
