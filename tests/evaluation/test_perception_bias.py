"""PerceptionTokenBias raises exactly the perception tokens' logits, and refuses a tokenizer without them."""

import pytest
import torch

from evaluation.perception_bias import PerceptionTokenBias
from perception_tokens.vocab import all_tokens


class VocabTokenizer:
    """The two tokenizer members the processor uses, over a plain vocabulary."""

    unk_token_id = 0

    def __init__(self, tokens):
        self.vocab = {t: i for i, t in enumerate(["<unk>", "a", "b", *tokens])}

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]


def test_only_perception_tokens_are_raised_by_the_bias():
    tokens = all_tokens()
    bias = PerceptionTokenBias(VocabTokenizer(tokens), bias=2.5)
    scores = torch.zeros(2, 3 + len(tokens))
    out = bias(torch.zeros(2, 1, dtype=torch.long), scores)
    assert out[:, :3].eq(0).all() and out[:, 3:].eq(2.5).all()
    assert scores.eq(0).all()  # the caller's scores are left as they were


def test_a_tokenizer_without_the_tokens_is_refused():
    with pytest.raises(ValueError, match=f"tokenizer lacks {len(all_tokens()) - 1} perception tokens"):
        PerceptionTokenBias(VocabTokenizer(all_tokens()[:1]))
