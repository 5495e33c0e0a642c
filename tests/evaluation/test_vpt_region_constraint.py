"""VPT region tokens (arXiv 2502.17425 Sec. 3.1): the default vocabulary is unchanged, and the
logits processor and the llguidance grammar close only complete regions with x_min <= x_max,
y_min <= y_max, for k = 4, 8, 16."""

import pytest
import torch

from evaluation.region_constraint import RegionLogitsProcessor
from perception_tokens import regions, token_kinds, vocab
from perception_tokens.vocab import TokenParseError
from training.llava.model import build_tiny_tokenizer


def test_default_vocabulary_and_hash_are_unchanged_and_vpt_kinds_add_tokens_only_when_registered():
    assert (len(vocab.all_tokens()), vocab.vocabulary_hash()) == (466, "002afe285b2998f6")
    assert token_kinds.region_kind() is None
    region, control = token_kinds.vpt_kinds(8)
    token_kinds.register(region)
    token_kinds.register(control)
    try:
        assert len(vocab.all_tokens()) == 466 + 2 + 16 + 1
        assert vocab.vocabulary_hash() != "002afe285b2998f6"
        assert token_kinds.region_kind() is region
    finally:
        token_kinds.unregister("reencode")
        token_kinds.unregister("region")
    assert vocab.vocabulary_hash() == "002afe285b2998f6"


def test_region_codec_and_pixel_box():
    r = regions.RegionCells(1, 2, 3, 2, grid=8)
    text = regions.encode_region(r)
    assert text == "<REGION_START><REGION_X_1><REGION_Y_2><REGION_X_3><REGION_Y_2><REGION_END>"
    assert regions.decode_region(text) == r
    assert r.pixel_box(800, 400) == (100, 100, 400, 150)  # cells 100 x 50 px
    assert regions.box_to_cells((100, 100, 400, 150), 800, 400) == r  # edges on cell borders stay inside
    assert regions.RegionCells(0, 7, 0, 7).pixel_box(5, 6) == (0, 5, 1, 6)  # fewer pixels than cells: never empty
    with pytest.raises(TokenParseError, match="x_max < x_min"):
        regions.RegionCells(3, 0, 2, 0)
    with pytest.raises(TokenParseError, match="not a region"):
        regions.decode_region("<REGION_START><REGION_X_1><REGION_Y_2><REGION_X_3><REGION_Y_2>")


def tokenizer_with_regions(grid):
    tok = build_tiny_tokenizer()
    tok.add_tokens(token_kinds.vpt_tokens(grid), special_tokens=False)
    return tok


def ids(tok, tokens):
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def region(a, b, c, d):
    return [regions.REGION_START, regions.x_token(a), regions.y_token(b), regions.x_token(c), regions.y_token(d),
            regions.REGION_END]


def processor_accepts(proc, tok, seq, *, finished=True):
    """Every token allowed when it is written, and (finished) end-of-sequence allowed after."""
    vocab = len(tok)
    for t in range(len(seq)):
        if not proc.allowed(seq[:t], vocab)[seq[t]]:
            return False
    return not finished or bool(proc.allowed(seq, vocab)[tok.eos_token_id])


@pytest.mark.parametrize("grid", [4, 8, 16])
def test_processor_refuses_reversed_and_unclosed_regions_and_accepts_valid_ones(grid):
    tok = tokenizer_with_regions(grid)
    proc = RegionLogitsProcessor(tok)
    assert proc.grid == grid
    text = tok.encode("the cup")
    last = grid - 1
    for a, b, c, d in [(0, 0, 0, 0), (0, 0, last, last), (1, 2, 1, 3), (last, last, last, last)]:
        seq = text + ids(tok, region(a, b, c, d)) + text
        assert processor_accepts(proc, tok, seq), (a, b, c, d)
    assert not processor_accepts(proc, tok, ids(tok, region(2, 0, 1, 0)))  # x_max < x_min
    assert not processor_accepts(proc, tok, ids(tok, region(0, 3, 1, 2)))  # y_max < y_min
    assert not processor_accepts(proc, tok, ids(tok, region(0, 0, 1, 1)[:-1]))  # no end: eos refused
    assert not processor_accepts(proc, tok, ids(tok, region(0, 0, 1, 1)[:-1]) + text)  # text before the end
    assert not processor_accepts(proc, tok, ids(tok, [regions.x_token(0)]))  # a cell outside a region
    # the logits: after x_min = 2, y_min = 1 a row may only write x cells >= 2
    proc.prompt_length = 1  # the answer starts after one prompt token
    scores = proc(torch.tensor([text[:1] + ids(tok, region(2, 1, 2, 1)[:3])]), torch.zeros(1, len(tok)))
    kept = (scores[0] > torch.finfo(scores.dtype).min).nonzero().flatten().tolist()
    assert kept == ids(tok, [regions.x_token(c) for c in range(2, grid)])


@pytest.mark.parametrize("grid", [4, 8, 16])
def test_grammar_agrees_with_the_processor(grid):
    pytest.importorskip("llguidance")
    from evaluation.constraint_grammar import llguidance_matcher, region_lark_grammar

    tok = tokenizer_with_regions(grid)
    proc = RegionLogitsProcessor(tok)
    matcher = llguidance_matcher(tok, region_lark_grammar(proc))
    text = tok.encode("the cup")
    last = grid - 1
    good = [text + ids(tok, region(a, b, c, d)) + text
            for a, b, c, d in [(0, 0, 0, 0), (0, 0, last, last), (1, 2, 1, 3), (last, 0, last, last)]]
    bad = [ids(tok, region(2, 0, 1, 0)), ids(tok, region(0, 3, 1, 2)), ids(tok, region(0, 0, 1, 1)[:-1]) + text,
           ids(tok, [regions.REGION_END])]
    for seq in good:
        m = matcher.deep_copy()
        assert m.validate_tokens(seq) == len(seq) and m.consume_tokens(seq) and m.is_accepting(), seq
    for seq in bad:
        consumed = matcher.deep_copy().validate_tokens(seq)
        refused_at = next(t for t in range(len(seq) + 1) if t == len(seq) or not proc.allowed(seq[:t], len(tok))[seq[t]])
        assert consumed == refused_at < len(seq), seq
    unclosed = ids(tok, region(0, 0, 1, 1)[:-1])
    m = matcher.deep_copy()
    assert m.consume_tokens(unclosed) and not m.is_accepting()  # a region without its end cannot stop
