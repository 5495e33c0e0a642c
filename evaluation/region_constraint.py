"""Constrained decoding of VPT regions (arXiv 2502.17425 Sec. 3.1): a transformers ``LogitsProcessor``.

A region is ``<REGION_START> X_a Y_b X_c Y_d <REGION_END>`` on a k x k grid. Rules per row, from
the ids generated so far:

- outside a region: no cell token and no ``<REGION_END>`` (a region opens only with its start);
- after the start: only x cells; then only y cells; then x cells ``>= a`` (x_max >= x_min); then
  y cells ``>= b`` (y_max >= y_min); then only ``<REGION_END>`` -- so end-of-sequence and every
  other token are refused until the region is complete.

The grid size k comes from the tokenizer's cell tokens (``<REGION_X_0..k-1>``). The same rules
as an llguidance grammar: :func:`evaluation.constraint_grammar.region_lark_grammar`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from transformers import LogitsProcessor

from perception_tokens import regions

# phases inside a region: what the next token must be
OUTSIDE, WANT_X0, WANT_Y0, WANT_X1, WANT_Y1, WANT_END = range(6)


class RegionLogitsProcessor(LogitsProcessor):
    """Only complete, valid regions (see module docstring). ``prompt_length``: where each row's
    answer starts (an int for all rows, one per row, or None = the width at the first call)."""

    def __init__(self, tokenizer, prompt_length: int | Sequence[int] | None = None):
        self.grid = regions.grid_in_vocabulary(tokenizer.get_vocab())
        if self.grid == 0 or regions.REGION_START not in tokenizer.get_vocab():
            raise ValueError("tokenizer lacks the VPT region tokens (<REGION_START>, <REGION_X_0>, ...); add them first")
        ids = tokenizer.convert_tokens_to_ids
        self.start_id, self.end_id = ids(regions.REGION_START), ids(regions.REGION_END)
        self.x_ids = [ids(regions.x_token(c)) for c in range(self.grid)]
        self.y_ids = [ids(regions.y_token(c)) for c in range(self.grid)]
        self._x_value = {i: c for c, i in enumerate(self.x_ids)}
        self._y_value = {i: c for c, i in enumerate(self.y_ids)}
        self.prompt_length = prompt_length

    def phase(self, generated: Sequence[int]) -> tuple[int, int, int]:
        """``(phase, x_min, y_min)`` after ``generated`` (x_min / y_min: -1 until written)."""
        phase, x0, y0 = OUTSIDE, -1, -1
        for tok in generated:
            tok = int(tok)
            if phase == OUTSIDE:
                if tok == self.start_id:
                    phase, x0, y0 = WANT_X0, -1, -1
            elif phase == WANT_X0 and tok in self._x_value:
                phase, x0 = WANT_Y0, self._x_value[tok]
            elif phase == WANT_Y0 and tok in self._y_value:
                phase, y0 = WANT_X1, self._y_value[tok]
            elif phase == WANT_X1 and tok in self._x_value:
                phase = WANT_Y1
            elif phase == WANT_Y1 and tok in self._y_value:
                phase = WANT_END
            else:  # the end closes a region; anything else only happens unconstrained: leave it
                phase = OUTSIDE
        return phase, x0, y0

    def allowed(self, generated: Sequence[int], vocab: int) -> torch.Tensor:
        """Bool ``[vocab]``: the ids a row that generated ``generated`` may write next."""
        phase, x0, y0 = self.phase(generated)
        keep = torch.zeros(vocab, dtype=torch.bool)
        if phase == OUTSIDE:
            keep[:] = True
            keep[[self.end_id, *self.x_ids, *self.y_ids]] = False
        elif phase in (WANT_X0, WANT_X1):
            keep[self.x_ids[x0 if phase == WANT_X1 else 0:]] = True
        elif phase in (WANT_Y0, WANT_Y1):
            keep[self.y_ids[y0 if phase == WANT_Y1 else 0:]] = True
        else:
            keep[self.end_id] = True
        return keep

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        starts = [self.prompt_length] * len(input_ids) if isinstance(self.prompt_length, int) else self.prompt_length
        if len(starts) != len(input_ids):
            raise ValueError(f"{len(starts)} prompt lengths for a batch of {len(input_ids)}")
        keep = torch.stack([self.allowed(row[s:].tolist(), scores.shape[-1]) for row, s in zip(input_ids, starts)])
        return scores.masked_fill(~keep.to(scores.device), torch.finfo(scores.dtype).min)
