"""The paper's text-coordinates ablation: boxes and points written as plain integers instead of ``<PIXEL_k>`` tokens.

``curriculum.coordinates: text`` rewrites every sample's question and answer after the pools are
built, so the same images, boxes and order are trained with the coordinates as text: a box
``(<PIXEL_12>,<PIXEL_40>,<PIXEL_99>,<PIXEL_120>)`` becomes ``(12,40,99,120)`` on the same 336 grid,
a point ``(<PIXEL_5>,<PIXEL_7>)`` becomes ``(5,7)``. Depth tokens are untouched.
"""

from __future__ import annotations

import re
from dataclasses import replace

from perception_tokens.curriculum.sample import Sample

_PIXEL_TOKEN = re.compile(r"<PIXEL_(0|[1-9]\d*)>")
_ANY_PIXEL = re.compile(r"<PIXEL_[^<>]*>")


def text_coordinates(text: str) -> str:
    """``text`` with each ``<PIXEL_k>`` written as ``k``; a malformed pixel token is an error, never passed through."""
    bad = [t for t in _ANY_PIXEL.findall(text) if not _PIXEL_TOKEN.fullmatch(t)]
    if bad:
        raise ValueError(f"malformed pixel token {bad[0]!r} in {text[:80]!r}")
    return _PIXEL_TOKEN.sub(r"\1", text)


def with_text_coordinates(sample: Sample) -> Sample:
    return replace(sample, question=text_coordinates(sample.question), answer=text_coordinates(sample.answer))
