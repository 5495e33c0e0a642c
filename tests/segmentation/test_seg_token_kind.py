"""Perceptio's [SEG] control token: only in the vocabulary when asked for, and constrained decoding
keeps segmentation -> depth -> answer (the logits processor and the llguidance grammar agree)."""

import pytest
import torch

from evaluation.constrained import DepthSpanLogitsProcessor
from evaluation.constraint_grammar import lark_grammar
from perception_tokens import token_kinds, vocab

BUILTIN_HASH = "002afe285b2998f6"  # depth + pixel, 466 tokens: every project / aurora adapter records it


@pytest.fixture
def seg_enabled():
    token_kinds.enable("seg")
    yield token_kinds.get("seg")
    token_kinds.disable("seg")


def test_builtin_vocabulary_has_no_seg_and_keeps_its_hash():
    assert "[SEG]" not in vocab.all_tokens()
    assert len(vocab.all_tokens()) == 466 and vocab.vocabulary_hash() == BUILTIN_HASH


def test_enabling_seg_appends_one_token_and_disabling_restores_the_hash(seg_enabled):
    tokens = vocab.all_tokens()
    assert len(tokens) == 467 and tokens[-1] == "[SEG]" and tokens[:466] == vocab.all_tokens()[:466]
    assert vocab.vocabulary_hash() != BUILTIN_HASH
    assert token_kinds.enable("seg") is seg_enabled and len(vocab.all_tokens()) == 467  # idempotent
    assert vocab.skill_tokens(["seg"]) == ["[SEG]"]
    assert vocab.skills_in_text(["[SEG] <DEPTH_START>"]) == ["depth", "seg"]
    assert seg_enabled.decode(seg_enabled.encode(None)) is True
    with pytest.raises(vocab.TokenParseError):
        seg_enabled.decode("<SEG>")
    token_kinds.disable("seg")
    assert vocab.vocabulary_hash() == BUILTIN_HASH
    with pytest.raises(ValueError, match="unknown optional token kind 'mask'"):
        token_kinds.enable("mask")


def tiny_tokenizer():
    from training.llava.model import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.add_tokens(vocab.all_tokens(), special_tokens=False)
    return tok


def banned(proc, tok, generated: list[str], token: str) -> bool:
    """Whether the processor bans ``token`` after ``generated`` (tokens as strings)."""
    ids = torch.tensor([[tok.bos_token_id] + tok.convert_tokens_to_ids(generated)])
    return bool(proc(ids, torch.zeros(1, len(tok)))[0, tok.convert_tokens_to_ids(token)] < -1e30)


DEPTH = ["<DEPTH_START>"] + ["<DEPTH_7>"] * 100 + ["<DEPTH_END>"]


def test_processor_allows_seg_once_and_only_before_the_depth_map(seg_enabled):
    tok = tiny_tokenizer()
    proc = DepthSpanLogitsProcessor(tok, prompt_length=1)
    assert proc.control_id == tok.convert_tokens_to_ids("[SEG]")
    assert not banned(proc, tok, [], "[SEG]") and not banned(proc, tok, [], "<DEPTH_START>")
    assert banned(proc, tok, ["[SEG]"], "[SEG]") and not banned(proc, tok, ["[SEG]"], "<DEPTH_START>")  # once
    assert banned(proc, tok, DEPTH, "[SEG]")  # depth before [SEG] is refused
    assert banned(proc, tok, ["<DEPTH_START>", "<DEPTH_3>"], "[SEG]")  # and inside the span
    assert banned(proc, tok, ["[SEG]"] + DEPTH, "<DEPTH_START>")  # one depth map, then the answer
    # rows standing in different places get their own masks
    ids = torch.tensor([[tok.bos_token_id, tok.convert_tokens_to_ids("[SEG]")], [tok.bos_token_id, tok.bos_token_id]])
    proc.prompt_length = 1
    out = proc(ids, torch.zeros(2, len(tok)))
    seg = tok.convert_tokens_to_ids("[SEG]")
    assert out[0, seg] < -1e30 and out[1, seg] == 0


def test_without_seg_registered_the_token_is_not_constrained():
    tok = tiny_tokenizer()
    assert "[SEG]" not in tok.get_vocab()
    assert DepthSpanLogitsProcessor(tok, prompt_length=1).control_id == -1


def test_grammar_refuses_depth_before_seg_and_llguidance_agrees_with_the_processor(seg_enabled):
    pytest.importorskip("llguidance")
    from evaluation.constraint_grammar import llguidance_matcher

    tok = tiny_tokenizer()
    proc = DepthSpanLogitsProcessor(tok)
    grammar = lark_grammar(proc)
    v = tok.convert_tokens_to_ids
    seg = v("[SEG]")
    assert f"start: items <[{seg}]> spans | spans" in grammar and "spans: items (span items)?" in grammar
    matcher = llguidance_matcher(tok, grammar)
    depth = [v("<DEPTH_START>")] + [v("<DEPTH_3>")] * 100 + [v("<DEPTH_END>")]
    word = [v("the")] if "the" in tok.get_vocab() else []
    cases = {
        "seg then depth then answer": ([seg] + depth + word, len(depth) + 1 + len(word)),
        "depth then seg": (depth + [seg], len(depth)),
        "seg twice": ([seg, seg], 1),
        "seg inside the depth span": ([v("<DEPTH_START>"), seg], 1),
        "answer without seg": (depth + word, len(depth + word)),
    }
    for name, (seq, expected) in cases.items():
        assert matcher.deep_copy().validate_tokens(seq) == expected, name
        proc.prompt_length = 1
        ids = torch.tensor([[tok.bos_token_id] + seq])
        ok = len(seq)
        for t in range(len(seq)):
            if not proc(ids[:, : 1 + t], torch.zeros(1, len(tok)))[0, seq[t]] > -1e30:
                ok = t
                break
        assert ok == expected, name


def test_seg_renderer_is_the_heads_mask_prediction(seg_enabled):
    from training.segmentation.head import SegmentationHead

    assert token_kinds.resolve_renderer(seg_enabled) is SegmentationHead.predict_masks
    head = SegmentationHead.build("tiny", 64)
    masks = head.predict_masks(torch.zeros(2, 3, 64, 64), torch.ones(2, 64), [(30, 40), (64, 64)])
    assert [tuple(m.shape) for m in masks] == [(30, 40), (64, 64)]
