"""A logits processor that favours every perception token by a fixed bias.

An untrained (tiny) model then writes perception tokens: the adversary against which the
depth-span constraint (:mod:`evaluation.constrained`) is tested and benchmarked."""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from perception_tokens.vocab import all_tokens


class PerceptionTokenBias(LogitsProcessor):
    """Adds ``bias`` to the logit of every perception token of ``tokenizer``: by default all of
    ``<DEPTH_*>`` / ``<PIXEL_*>``; a family with fewer (Qwen2.5-VL writes boxes as plain numbers,
    so it adds the depth tokens only) passes its own ``tokens``."""

    def __init__(self, tokenizer, bias: float = 50.0, tokens: list[str] | None = None):
        tokens = list(tokens) if tokens is not None else all_tokens()
        ids = tokenizer.convert_tokens_to_ids(tokens)
        missing = [t for t, i in zip(tokens, ids) if i is None or i == tokenizer.unk_token_id]
        if missing:
            raise ValueError(f"tokenizer lacks {len(missing)} perception tokens (e.g. {missing[:3]}): add them first")
        self.ids = torch.tensor(ids)
        self.bias = float(bias)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone()
        scores[:, self.ids] += self.bias
        return scores
