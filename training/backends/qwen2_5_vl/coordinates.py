"""Boxes and points in Qwen2.5-VL's convention: absolute pixels on the image as the processor resizes it.

The curriculum is written once for every family in LLaVA's convention: ``<PIXEL_k>`` tokens on a
336 x 336 grid, boxes ``(<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>)``, points ``(<PIXEL_x>,<PIXEL_y>)``
(Aurora's own depth CoT: ``(x = X y = Y)`` plain integers on that grid). Qwen2.5-VL was trained to
ground with plain-text integers in pixels of its *resized* input (smart_resize within
``min_pixels``/``max_pixels``), no special tokens (Qwen2.5-VL technical report, arXiv 2502.13923,
Sec. 2.2.1; the maintainers in QwenLM/Qwen3-VL#733 and #1427), written as the cookbook's
``"bbox_2d": [x1, y1, x2, y2]`` / ``"point_2d": [x, y]`` lists. So for Qwen every coordinate group
is rewritten to ``[x1, y1, x2, y2]`` / ``[x, y]`` on that image's resized frame, and the CoT
instruction's "the image is 336 x 336" states the resized size instead ("W x H"). Depth maps stay
perception tokens (``<DEPTH_k>``); Qwen's vocabulary gets no ``<PIXEL_k>`` tokens.

Grid value ``g`` (0..335) maps to ``g * W / 335`` pixels: ``box_to_grid`` made ``g`` as
``x * 335 / width``, so this is its inverse on the resized image (0 -> 0, 335 -> the far edge).
:meth:`ResizedFrame.to_grid_text` maps an answer back to the grid tokens (the benchmarks' frame),
so the evaluation's parsers read Qwen and LLaVA answers alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from transformers import Qwen2_5_VLProcessor

from perception_tokens.vocab import PIXEL_GRID, pixel_token

from training.llava.data import RecordError

_GRID_MAX = PIXEL_GRID - 1
_PX = r"<PIXEL_(\d+)>"
_GRID_BOX_RE = re.compile(rf"\({_PX},{_PX},{_PX},{_PX}\)")
_GRID_POINT_RE = re.compile(rf"\({_PX},{_PX}\)")
_AURORA_POINT_RE = re.compile(r"\(x = (\d+) y = (\d+)\)")  # Aurora's depth CoT (aurora_reference.depth_cot_qa)
_GRID_SIZE_RE = re.compile(rf"\bthe image is {PIXEL_GRID} x {PIXEL_GRID}\b")
_ANY_PIXEL_RE = re.compile(r"<PIXEL_[^<>]*>")
# What a model writes back: lenient on spaces, strict on shape (integers only, 4 or 2 of them).
_INT = r"\s*(\d+)\s*"
_MODEL_BOX_RE = re.compile(rf"\[{_INT},{_INT},{_INT},{_INT}\]")
_MODEL_POINT_RE = re.compile(rf"\[{_INT},{_INT}\]")


def resized_image_size(processor, height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` the processor resizes an image to (Qwen's smart_resize within min/max pixels)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    ip = processor.image_processor
    return smart_resize(height, width, factor=ip.patch_size * ip.merge_size, min_pixels=ip.size["shortest_edge"],
                        max_pixels=ip.size["longest_edge"])


@dataclass(frozen=True)
class ResizedFrame:
    """One image's coordinate frame for Qwen2.5-VL: pixels of the image as resized, ``width`` x ``height``."""

    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"resized image size {self.width}x{self.height} is not positive")

    @classmethod
    def of_image(cls, processor, height: int, width: int) -> "ResizedFrame":
        """The frame ``processor`` gives an image of ``height`` x ``width`` pixels."""
        return cls(*resized_image_size(processor, height, width))

    # ------------------------------------------------------------------ numbers

    def x_from_grid(self, g: int) -> int:
        return min(self.width, max(0, round(int(g) * self.width / _GRID_MAX)))

    def y_from_grid(self, g: int) -> int:
        return min(self.height, max(0, round(int(g) * self.height / _GRID_MAX)))

    def x_to_grid(self, x: int) -> int:
        return min(_GRID_MAX, max(0, round(int(x) * _GRID_MAX / self.width)))

    def y_to_grid(self, y: int) -> int:
        return min(_GRID_MAX, max(0, round(int(y) * _GRID_MAX / self.height)))

    def box_from_grid(self, box: Sequence[int]) -> list[int]:
        """A grid box (x1, y1, x2, y2) -> absolute pixels on the resized image, clamped to it."""
        x1, y1, x2, y2 = box
        return [self.x_from_grid(x1), self.y_from_grid(y1), self.x_from_grid(x2), self.y_from_grid(y2)]

    def box_to_grid(self, box: Sequence[int]) -> list[int]:
        """Absolute pixels on the resized image -> the 336 grid, clamped to 0..335."""
        x1, y1, x2, y2 = box
        return [self.x_to_grid(x1), self.y_to_grid(y1), self.x_to_grid(x2), self.y_to_grid(y2)]

    # ------------------------------------------------------------------ text

    def to_model_text(self, text: str) -> str:
        """Curriculum text (grid tokens) -> Qwen's: ``[x1, y1, x2, y2]`` boxes, ``[x, y]`` points, the resized size.

        A ``<PIXEL_k>`` left outside a box or point raises RecordError (nothing half-converted)."""
        out = _GRID_BOX_RE.sub(lambda m: _list(self.box_from_grid(m.groups())), text)
        point = lambda m: _list([self.x_from_grid(m.group(1)), self.y_from_grid(m.group(2))])  # noqa: E731
        out = _GRID_POINT_RE.sub(point, out)
        out = _AURORA_POINT_RE.sub(point, out)
        out = _GRID_SIZE_RE.sub(f"the image is {self.width} x {self.height}", out)
        stray = _ANY_PIXEL_RE.search(out)
        if stray:
            raise RecordError(f"pixel token {stray.group(0)} outside a box or point; cannot convert it to Qwen's pixels")
        return out

    def to_grid_text(self, text: str) -> str:
        """A Qwen answer -> the grid tokens of the benchmarks' frame (boxes and points; other text kept)."""
        grid_box = lambda m: "(" + ",".join(pixel_token(v) for v in self.box_to_grid(m.groups())) + ")"  # noqa: E731
        out = _MODEL_BOX_RE.sub(grid_box, text)
        return _MODEL_POINT_RE.sub(
            lambda m: f"({pixel_token(self.x_to_grid(m.group(1)))},{pixel_token(self.y_to_grid(m.group(2)))})", out)


def _list(values: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def to_model_conversations(conversations: Sequence[dict[str, Any]], frame: ResizedFrame) -> list[dict[str, Any]]:
    """LLaVA turns with every turn's coordinates rewritten for ``frame`` (copies; the records stay as they are)."""
    return [{**turn, "value": frame.to_model_text(turn["value"])} for turn in conversations]


def uses_resized_frame(processor) -> bool:
    """Whether answers of this processor's model are in Qwen2.5-VL's frame (LLaVA's: the 336-grid tokens)."""
    return isinstance(processor, Qwen2_5_VLProcessor)


def frame_for(processor, height: int, width: int) -> ResizedFrame | None:
    """Qwen2.5-VL's frame for an image of ``height`` x ``width``; ``None`` for another family's processor."""
    return ResizedFrame.of_image(processor, height, width) if uses_resized_frame(processor) else None
