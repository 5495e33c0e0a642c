"""Masks at inference (Perceptio sec. 3.3): the generated ``[SEG]``'s hidden state -> the SAM2 head -> an RLE mask.

After a batch is generated, the rows of a mask benchmark (``answer_type == "mask"``) are read
again by one teacher-forced forward pass of the batch's prompts and generated tokens, and the
last layer's state at each row's first generated ``[SEG]`` is taken: the state the head was
trained on (``training.segmentation.training``: the last layer at the ``[SEG]`` token's own
position). The head (frozen SAM2 encoder on the row's original image, the projection, the mask
decoder) gives low-resolution mask logits, which are resized to the ground truth's size
(``gold``'s RLE size, the image's) and thresholded at 0 (probability 0.5, as LISA / SAM2).

A row whose generation has no ``[SEG]`` gets an empty mask at the ground truth's size and
``pred`` None (counted in ``n_unparsed``; IoU 0 in the scores); it is never dropped.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from evaluation.segmentation_metrics import gold_mask
from perception_tokens.images import decode_rgb
from perception_tokens.masks import mask_to_rle
from perception_tokens.token_kinds import SEG_TOKEN
from training.segmentation.head import upsample

__all__ = ["SegMaskPredictor", "empty_mask"]


def empty_mask(size: Sequence[int]) -> dict:
    """The RLE of an all-zero mask of ``size`` ``[h, w]``."""
    import numpy as np

    return mask_to_rle(np.zeros((int(size[0]), int(size[1])), dtype=bool))


class SegMaskPredictor:
    """Called by :func:`evaluation.generate.generate_predictions` after each batch (its ``batch_hook``):
    ``pred_mask`` (and ``pred``) for the batch's mask rows, nothing for the others."""

    def __init__(self, model: Any, head: Any, tokenizer: Any):
        seg_id = tokenizer.convert_tokens_to_ids(SEG_TOKEN)
        if seg_id is None or seg_id == tokenizer.unk_token_id:
            raise ValueError(f"the adapter's tokenizer has no {SEG_TOKEN} token: it cannot answer a mask benchmark")
        self.model, self.head, self.seg_id = model, head, int(seg_id)

    def first_seg(self, generated: torch.Tensor) -> int | None:
        """Index of the first ``[SEG]`` among a row's generated ids, or None."""
        where = (generated == self.seg_id).nonzero()
        return int(where[0, 0]) if len(where) else None

    @torch.inference_mode()
    def __call__(self, inputs: dict[str, Any], sequences: torch.Tensor, rows: Sequence[dict]) -> list[dict]:
        width = inputs["input_ids"].shape[1]
        out: list[dict] = [{} for _ in rows]
        found: dict[int, int] = {}
        for j, row in enumerate(rows):
            if row.get("answer_type") != "mask":
                continue
            size = gold_mask(row)["size"]
            at = self.first_seg(sequences[j, width:])
            if at is None:
                out[j] = {"pred_mask": empty_mask(size), "pred": None}
            else:
                found[j] = width + at
        if not found:
            return out
        last = self._last_hidden(inputs, sequences)
        order = sorted(found)
        hidden = torch.stack([last[j, found[j]] for j in order])
        device = next(self.head.parameters()).device
        sam = torch.stack([self.head.image_input(decode_rgb(rows[j]["image_bytes"])) for j in order]).to(device)
        logits = self.head(sam, hidden.to(device))
        for k, j in enumerate(order):
            full = upsample(logits[k], gold_mask(rows[j])["size"])
            out[j] = {"pred_mask": mask_to_rle((full > 0).cpu().numpy()), "pred": SEG_TOKEN}
        return out

    def _last_hidden(self, inputs: dict[str, Any], sequences: torch.Tensor) -> torch.Tensor:
        """The last layer's states over the prompts and generated tokens (the prompt's own attention
        mask; generated tokens all attended: what follows a row's [SEG] cannot change its state)."""
        shape = inputs["input_ids"].shape
        new = sequences.shape[1] - shape[1]
        forward = dict(inputs, input_ids=sequences)
        for key, value in inputs.items():
            # per-token inputs run on over the generated tokens: attended, and text (Qwen's mm_token_type_ids 0)
            if key != "input_ids" and torch.is_tensor(value) and value.shape == shape:
                fill = value.new_ones if key == "attention_mask" else value.new_zeros
                forward[key] = torch.cat([value, fill((shape[0], new))], dim=1)
        return self.model(**forward, output_hidden_states=True).hidden_states[-1]
