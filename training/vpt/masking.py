"""VPT's mask modeling (arXiv 2502.17425 Sec. 3.2): for a share of the re-encoding samples "the tokens
corresponding to the answer ... can only access the <Re-Encoding Control> token while being restricted from
accessing the tokens corresponding to the original question and image embedding", so the control token's
hidden state must carry the query.

Here: in a masked row every position after the control token sees only the control token and what
follows it (the projector's inserted embeddings, the answer so far); the control token itself and
everything before it keep ordinary causal attention. The mask is a 4D additive mask ``[batch, 1, L, L]``
(0 = attend, the dtype's minimum = blocked), which transformers passes to the attention as given.
Which samples are masked is a seeded draw per sample id, so it does not depend on order or batching.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import torch


def is_masked(sample_id: str, seed: int, fraction: float) -> bool:
    """The seeded draw: True for about ``fraction`` of sample ids, the same on every run and machine."""
    digest = hashlib.sha256(f"vpt-mask:{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def control_index(ids: Sequence[int], control_id: int, start: int = 0) -> int | None:
    """Index of the first control token at or after ``start`` (the prompt's end), or None."""
    for i in range(start, len(ids)):
        if ids[i] == control_id:
            return i
    return None


def attention_mask_4d(lengths: Sequence[int], width: int, controls: Sequence[int | None], *,
                      dtype: torch.dtype, device=None) -> torch.Tensor:
    """The additive mask of a left-padded batch: row ``r`` holds ``lengths[r]`` tokens at the right end;
    ``controls[r]`` is the control token's index in that row's own ids (None: not masked, plain causal)."""
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    allowed = causal.repeat(len(lengths), 1, 1)
    for row, (length, control) in enumerate(zip(lengths, controls)):
        offset = width - length
        allowed[row, :, :offset] = False  # padding is never a key
        if control is not None:
            c = offset + control
            allowed[row, c + 1:, :c] = False  # after the control token: nothing before it
    allowed |= torch.eye(width, dtype=torch.bool)  # a padded query keeps one key (no all-blocked row)
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1).to(device)
