"""Constrained decoding of perception tokens: a transformers ``LogitsProcessor``.

Rules, per row, derived only from the ids generated so far (never from hidden state):

Depth maps
  - after ``<DEPTH_START>``: only depth codes, until exactly ``DEPTH_SPAN`` (100) codes;
    then only ``<DEPTH_END>``;
  - outside a span: no depth codes and no ``<DEPTH_END>``;
  - at most one depth map per answer: once a span has closed, ``<DEPTH_START>`` is banned.

Boxes ``(<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>)`` and points ``(<PIXEL_x>,<PIXEL_y>)``
(the curriculum's depth CoT writes the marked points as 2-coordinate groups)
  - a pixel token may only open a group right after a token whose text ends with ``(``;
  - inside a group, after a pixel token: the comma token after the 1st and 3rd pixel,
    the comma or a closer after the 2nd (a point ends there), only a closer after the
    4th; the 3rd and 4th values must exceed the 1st and 2nd (x2 > x1, y2 > y1); a closer is a token whose text starts with ``)`` (the tokenizer may merge
    ``)`` with what follows, e.g. ``).``); after a comma: only pixel tokens;
  - no pixel token anywhere else, and no depth tokens inside a box (nor pixels in a span).

Which ids are commas, openers and closers is read from the tokenizer's vocabulary
(token strings, with the SentencePiece ``▁`` / byte-level ``Ġ`` space markers
stripped), so the rules follow the tokenizer rather than assume ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import LogitsProcessor

from perception_tokens.vocab import (
    DEPTH_END,
    DEPTH_SPAN,
    DEPTH_START,
    NUM_DEPTH_CODES,
    PIXEL_GRID,
    depth_code_token,
    pixel_token,
)

POINT_COORDS = 2  # points "(<PIXEL_x>,<PIXEL_y>)" in the depth CoT answers
BOX_COORDS = 4  # boxes "(<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>)"
_SPACE_MARKERS = ("\u2581", "\u0120", " ")  # SentencePiece ▁, byte-level Ġ, plain space


@dataclass
class RowState:
    """Where one row stands, recomputed from its generated ids at every step."""

    in_span: bool = False
    codes_in_span: int = 0
    spans_closed: int = 0
    in_box: bool = False
    pixels_in_box: int = 0
    coords: tuple[int, ...] = ()  # pixel values of the open group so far
    last_was_comma: bool = False  # inside a box
    last_opens_box: bool = False  # last token's text ends with "("


def _token_ids(tokenizer, tokens: Sequence[str]) -> list[int] | None:
    """Ids of ``tokens`` if the tokenizer knows every one of them, else ``None``."""
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = []
    for t in tokens:
        i = tokenizer.convert_tokens_to_ids(t)
        if i is None or (unk is not None and i == unk):
            return None
        ids.append(int(i))
    return ids


def _vocab_strings(tokenizer) -> dict[int, str]:
    """id -> token text with leading space markers removed."""
    out = {}
    for token, idx in tokenizer.get_vocab().items():
        text = token
        while text[:1] in _SPACE_MARKERS and text:
            text = text[1:]
        out[int(idx)] = text
    return out


class DepthSpanLogitsProcessor(LogitsProcessor):
    """Keep generated perception tokens well-formed (see module docstring).

    ``prompt_length``: index in ``input_ids`` where the answer starts: an int for all
    rows (with left padding every row's prompt ends at the same column), or one int per
    row (e.g. when an answer prefix of different lengths was appended to each prompt;
    the prefix counts as answer so its depth span is seen). ``None`` takes the length of
    ``input_ids`` at the first call, i.e. everything before generation is prompt; use a
    fresh processor for each ``generate`` call in that case.
    """

    def __init__(
        self,
        tokenizer,
        prompt_length: int | Sequence[int] | None = None,
        *,
        constrain_depth: bool = True,
        constrain_boxes: bool = True,
    ):
        depth = _token_ids(tokenizer, [DEPTH_START, DEPTH_END])
        codes = _token_ids(tokenizer, [depth_code_token(k) for k in range(NUM_DEPTH_CODES)])
        if constrain_depth and (depth is None or codes is None):
            raise ValueError("tokenizer lacks the depth perception tokens; add them before constraining depth")
        self.constrain_depth = constrain_depth
        self.depth_start_id, self.depth_end_id = depth if depth else (-1, -1)
        self.depth_code_ids = codes or []

        pixels = _token_ids(tokenizer, [pixel_token(v) for v in range(PIXEL_GRID)])
        # A depth-only tokenizer has no pixel tokens: then there is nothing to constrain.
        self.constrain_boxes = constrain_boxes and pixels is not None
        self.pixel_ids = pixels or []

        strings = _vocab_strings(tokenizer) if self.constrain_boxes else {}
        perception = set(self.pixel_ids) | set(self.depth_code_ids) | {self.depth_start_id, self.depth_end_id}
        self.comma_ids = sorted(i for i, s in strings.items() if s == "," and i not in perception)
        self.opener_ids = frozenset(i for i, s in strings.items() if s.endswith("(") and i not in perception)
        self.closer_ids = sorted(i for i, s in strings.items() if s.startswith(")") and i not in perception)
        if self.constrain_boxes and (not self.comma_ids or not self.closer_ids or not self.opener_ids):
            raise ValueError("tokenizer has no ',' / '(' / ')' tokens; cannot constrain boxes")

        self.prompt_length = prompt_length
        self._depth_code_set = frozenset(self.depth_code_ids)
        self._pixel_set = frozenset(self.pixel_ids)
        self._pixel_value = {i: v for v, i in enumerate(self.pixel_ids)}
        self._comma_set = frozenset(self.comma_ids)
        self._closer_set = frozenset(self.closer_ids)
        self._masks: dict[tuple[int, torch.device], dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ state

    def row_state(self, generated: Sequence[int]) -> RowState:
        """Scan one row's generated ids and say where it stands."""
        st = RowState()
        for tok in generated:
            tok = int(tok)
            if st.in_span:
                if tok in self._depth_code_set:
                    st.codes_in_span += 1
                elif tok == self.depth_end_id:
                    st.in_span, st.spans_closed = False, st.spans_closed + 1
                continue
            if tok == self.depth_start_id:
                st.in_span, st.codes_in_span = True, 0
                st.last_opens_box = False
                continue
            if self.constrain_boxes:
                if tok in self._pixel_set:
                    if st.in_box:
                        st.pixels_in_box += 1
                        st.coords += (self._pixel_value[tok],)
                    elif st.last_opens_box:
                        st.in_box, st.pixels_in_box = True, 1
                        st.coords = (self._pixel_value[tok],)
                    st.last_was_comma = False
                elif st.in_box and tok in self._comma_set:
                    st.last_was_comma = True
                elif st.in_box and tok in self._closer_set:
                    st.in_box, st.pixels_in_box, st.last_was_comma, st.coords = False, 0, False, ()
                elif st.in_box:
                    # Only reachable when generation was not constrained: leave the box.
                    st.in_box, st.pixels_in_box, st.last_was_comma, st.coords = False, 0, False, ()
                st.last_opens_box = tok in self.opener_ids
        return st

    # ------------------------------------------------------------------ masks

    def _mask_set(self, vocab: int, device: torch.device) -> dict[str, torch.Tensor]:
        key = (vocab, device)
        if key not in self._masks:
            def mask(ids: Sequence[int]) -> torch.Tensor:
                m = torch.zeros(vocab, dtype=torch.bool, device=device)
                ids = [i for i in ids if 0 <= i < vocab]
                if ids:
                    m[torch.tensor(ids, device=device)] = True
                return m

            self._masks[key] = {
                "codes": mask(self.depth_code_ids),
                "end": mask([self.depth_end_id]),
                "start": mask([self.depth_start_id]),
                "pixels": mask(self.pixel_ids),
                "comma": mask(self.comma_ids),
                "closer": mask(self.closer_ids),
            }
        return self._masks[key]

    def _pixels_above(self, value: int, masks: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mask of pixel tokens whose value is greater than ``value``."""
        m = torch.zeros_like(masks["pixels"])
        ids = [i for i in self.pixel_ids[value + 1 :] if i < m.shape[0]]
        if ids:
            m[torch.tensor(ids, device=m.device)] = True
        return m

    def allowed_and_banned(self, st: RowState, masks: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(allowed, banned)`` masks for a row: ``allowed`` (if not None) is the only set
        permitted; ``banned`` is removed in any case."""
        banned = torch.zeros_like(masks["codes"])
        if self.constrain_depth:
            if st.in_span:
                return (masks["codes"] if st.codes_in_span < DEPTH_SPAN else masks["end"]), banned
            banned |= masks["codes"] | masks["end"]
            if st.spans_closed >= 1:
                banned |= masks["start"]
        if self.constrain_boxes:
            if st.in_box:
                if st.last_was_comma:
                    if st.pixels_in_box >= POINT_COORDS:
                        # x2 > x1 and y2 > y1: a box never collapses (GridBox refuses that).
                        return self._pixels_above(st.coords[st.pixels_in_box - POINT_COORDS], masks), banned
                    return masks["pixels"], banned
                if st.pixels_in_box == POINT_COORDS:
                    x1, y1 = st.coords
                    if x1 >= PIXEL_GRID - 1 or y1 >= PIXEL_GRID - 1:
                        return masks["closer"], banned  # no room for a box: it is a point
                    return masks["comma"] | masks["closer"], banned  # a point may close here
                return (masks["comma"] if st.pixels_in_box < BOX_COORDS else masks["closer"]), banned
            if not st.last_opens_box:
                banned |= masks["pixels"]
        return None, banned

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = int(input_ids.shape[1])
        starts = (
            [int(self.prompt_length)] * input_ids.shape[0]
            if isinstance(self.prompt_length, int)
            else [int(s) for s in self.prompt_length]
        )
        if len(starts) != input_ids.shape[0]:
            raise ValueError(f"{len(starts)} prompt lengths for a batch of {input_ids.shape[0]}")
        masks = self._mask_set(scores.shape[-1], scores.device)
        scores = scores.clone()
        neg = torch.finfo(scores.dtype).min
        rows = input_ids.tolist()
        for i, (row, start) in enumerate(zip(rows, starts)):
            allowed, banned = self.allowed_and_banned(self.row_state(row[start:]), masks)
            if allowed is not None:
                scores[i] = scores[i].masked_fill(~allowed, neg)
            if banned.any():
                scores[i] = scores[i].masked_fill(banned, neg)
        return scores
