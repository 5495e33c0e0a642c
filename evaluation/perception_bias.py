"""A logits processor that favours every perception token by a fixed bias.

An untrained (tiny) model then writes perception tokens: the adversary against which the
depth-span constraint (:mod:`evaluation.constrained`) is tested and benchmarked."""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from perception_tokens.vocab import all_tokens


class PerceptionTokenBias(LogitsProcessor):
    """Adds ``bias`` to the logit of every ``<DEPTH_*>`` / ``<PIXEL_*>`` token of ``tokenizer``."""

    def __init__(self, tokenizer, bias: float = 50.0):
        ids = tokenizer.convert_tokens_to_ids(all_tokens())
        missing = [t for t, i in zip(all_tokens(), ids) if i is None or i == tokenizer.unk_token_id]
        if missing:
            raise ValueError(f"tokenizer lacks {len(missing)} perception tokens (e.g. {missing[:3]}): add them first")
        self.ids = torch.tensor(ids)
        self.bias = float(bias)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone()
        scores[:, self.ids] += self.bias
        return scores
