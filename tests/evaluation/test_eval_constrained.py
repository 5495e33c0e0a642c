"""DepthSpanLogitsProcessor on hand-made logits: each rule, per row, from ids only."""

import math
import re

import pytest
import torch

from evaluation.constrained import DepthSpanLogitsProcessor
from perception_tokens.vocab import (
    DEPTH_END,
    DEPTH_START,
    all_tokens,
    decode_depth,
    depth_code_token,
    find_boxes,
    pixel_token,
)

TEXT_TOKENS = ["<unk>", "<s>", "</s>", "Ġ(", "(", ",", ")", ").", "Ġthe", "A", "Ġpoint", "Ġis"]


class StubTokenizer:
    """Just enough tokenizer: a vocabulary with text tokens then every perception token."""

    unk_token_id = 0

    def __init__(self, with_pixels: bool = True):
        tokens = TEXT_TOKENS + [t for t in all_tokens() if with_pixels or not t.startswith("<PIXEL_")]
        self.vocab = {t: i for i, t in enumerate(tokens)}

    def get_vocab(self):
        return dict(self.vocab)

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token, self.unk_token_id)


TOK = StubTokenizer()
V = len(TOK.vocab)
ID = TOK.vocab.__getitem__
START, END = ID(DEPTH_START), ID(DEPTH_END)
CODES = [ID(depth_code_token(k)) for k in range(128)]
PIX = [ID(pixel_token(v)) for v in range(336)]
PROMPT = [ID("<s>"), ID("Ġthe"), ID("Ġpoint")]


def allowed_after(generated: list[int], prompt=PROMPT, processor=None) -> set[int]:
    """Ids left finite after the processor, for one row = prompt + generated."""
    proc = processor or DepthSpanLogitsProcessor(TOK, prompt_length=len(prompt))
    ids = torch.tensor([prompt + generated])
    out = proc(ids, torch.zeros(1, V))
    return {i for i in range(V) if out[0, i] > -1e30}


def text_ids() -> set[int]:
    return {ID(t) for t in TEXT_TOKENS}


def test_outside_span_bans_codes_end_and_pixels():
    allowed = allowed_after([ID("Ġthe")])
    assert START in allowed and ID("</s>") in allowed and ID("Ġis") in allowed
    assert END not in allowed
    assert not allowed & set(CODES)
    assert not allowed & set(PIX)


def test_inside_span_only_codes_until_100_then_only_end():
    assert allowed_after([START]) == set(CODES)
    assert allowed_after([START] + CODES[:99]) == set(CODES)
    assert allowed_after([START] + [CODES[5]] * 100) == {END}


def test_one_depth_map_per_answer():
    allowed = allowed_after([START] + [CODES[1]] * 100 + [END])
    assert START not in allowed and END not in allowed and not allowed & set(CODES)
    assert ID("Ġthe") in allowed


def test_prompt_tokens_are_not_the_answer():
    # A closed span in the prompt does not count; an open span in the answer does.
    prompt = PROMPT + [START] + [CODES[0]] * 100 + [END]
    assert START in allowed_after([], prompt=prompt)
    assert allowed_after([START], prompt=prompt) == set(CODES)


def test_box_rules_follow_the_token_strings():
    open_paren = [ID("Ġthe"), ID("Ġ(")]
    after_open = allowed_after(open_paren)
    assert set(PIX) <= after_open and ID("Ġthe") in after_open  # "(" may also be plain text
    assert allowed_after(open_paren + [PIX[10]]) == {ID(",")}
    # two coordinates: a point may close, or go on to a box
    assert allowed_after(open_paren + [PIX[10], ID(","), PIX[20]]) == {ID(","), ID(")"), ID(").")}
    assert allowed_after(open_paren + [PIX[10], ID(",")]) == set(PIX)
    assert allowed_after(open_paren + [PIX[10], ID(","), PIX[20], ID(","), PIX[30]]) == {ID(",")}
    four = open_paren + [PIX[10], ID(","), PIX[20], ID(","), PIX[30], ID(","), PIX[40]]
    assert allowed_after(four) == {ID(")"), ID(").")}
    closed = allowed_after(four + [ID(").")])
    assert not closed & set(PIX) and ID("Ġthe") in closed


def test_box_corners_never_collapse():
    g = [ID("Ġ("), PIX[100], ID(","), PIX[50], ID(",")]
    assert allowed_after(g) == set(PIX[101:])  # x2 > x1
    assert allowed_after(g + [PIX[101], ID(",")]) == set(PIX[51:])  # y2 > y1
    # x1 on the last column: no box fits, the group can only close as a point
    assert allowed_after([ID("Ġ("), PIX[335], ID(","), PIX[3]]) == {ID(")"), ID(").")}


def test_no_depth_tokens_inside_a_box_and_no_pixels_inside_a_span():
    assert START not in allowed_after([ID("("), PIX[1], ID(","), PIX[2], ID(",")])
    assert not allowed_after([START, CODES[1]]) & set(PIX)


def test_rows_of_a_batch_are_independent():
    proc = DepthSpanLogitsProcessor(TOK, prompt_length=2)
    ids = torch.tensor([
        [ID("<s>"), ID("Ġthe"), START, CODES[3]],
        [ID("<s>"), ID("Ġthe"), ID("Ġ("), PIX[4]],
        [ID("<s>"), ID("Ġthe"), ID("Ġis"), ID("Ġthe")],
    ])
    out = proc(ids, torch.zeros(3, V))
    finite = [{i for i in range(V) if out[r, i] > -1e30} for r in range(3)]
    assert finite[0] == set(CODES)
    assert finite[1] == {ID(",")}
    assert START in finite[2] and not finite[2] & set(CODES)


def test_per_row_prompt_lengths_and_lazy_prompt_length():
    # Row 0's answer starts at column 1 (its prefix holds a closed span); row 1's at column 4.
    row0 = [ID("<s>"), START] + [CODES[0]] * 100 + [END]
    row1 = [ID("<unk>")] * (len(row0) - 2) + [ID("<s>"), ID("Ġthe")]
    proc = DepthSpanLogitsProcessor(TOK, prompt_length=[1, len(row0)])
    out = proc(torch.tensor([row0, row1]), torch.zeros(2, V))
    assert out[0, START] < -1e30 and out[1, START] > -1e30
    lazy = DepthSpanLogitsProcessor(TOK)
    lazy(torch.tensor([PROMPT + [START] + [CODES[0]] * 100 + [END]]), torch.zeros(1, V))
    assert lazy.prompt_length == len(PROMPT) + 102
    assert torch.isfinite(lazy(torch.tensor([PROMPT + [START] + [CODES[0]] * 100 + [END, START]]), torch.zeros(1, V))[0, CODES[0]])


def test_depth_only_tokenizer_skips_box_rules_and_missing_tokens_raise():
    proc = DepthSpanLogitsProcessor(StubTokenizer(with_pixels=False), prompt_length=1)
    assert not proc.constrain_boxes

    class Bare(StubTokenizer):
        def __init__(self):
            self.vocab = {t: i for i, t in enumerate(TEXT_TOKENS)}

    with pytest.raises(ValueError, match="depth perception tokens"):
        DepthSpanLogitsProcessor(Bare())


def _well_formed(tokens: list[str]) -> None:
    """Every depth span decodes, at most one; every pixel token sits in a point or box."""
    text = "".join(t.lstrip("Ġ") for t in tokens)
    # Generation may stop mid-group (length limit): an unfinished group at the very end is fine.
    text = re.sub(r"\((?:<PIXEL_\d+>,?)+$", "", text)
    assert text.count(DEPTH_START) <= 1
    if DEPTH_START in text:
        span = text[text.index(DEPTH_START): text.index(DEPTH_END) + len(DEPTH_END)]
        assert len(decode_depth(span)) == 100
        text = text.replace(span, " ")
    assert "<DEPTH_" not in text
    groups = re.findall(r"\((<PIXEL_\d+>(?:,<PIXEL_\d+>)*)\)", text)
    assert all(g.count("<PIXEL_") in (2, 4) for g in groups)
    assert text.count("<PIXEL_") == sum(g.count("<PIXEL_") for g in groups)
    assert len(find_boxes(text)) == sum(g.count("<PIXEL_") == 4 for g in groups)


def test_greedy_decoding_with_adversarial_logits_stays_well_formed():
    """Random logits that favour perception tokens: 300 greedy steps keep every rule."""
    gen = torch.Generator().manual_seed(0)
    inverse = {i: t for t, i in TOK.vocab.items()}
    for trial in range(2):
        proc = DepthSpanLogitsProcessor(TOK, prompt_length=len(PROMPT))
        seq = list(PROMPT)
        bias = torch.zeros(V)
        bias[CODES + PIX + [START, END]] = 2.0
        for _ in range(300):
            scores = torch.randn(1, V, generator=gen) * 3 + bias
            scores[0, ID("</s>")] = -math.inf  # keep going
            out = proc(torch.tensor([seq]), scores)
            seq.append(int(out[0].argmax()))
        tokens = [inverse[i] for i in seq[len(PROMPT):]]
        assert DEPTH_START in tokens  # the test exercises spans...
        assert any(t.startswith("<PIXEL_") for t in tokens)  # ...and boxes
        _well_formed(tokens)


def test_unconstrained_adversarial_logits_are_malformed():
    """The same logits without the processor break the rules (so the test above can fail)."""
    gen = torch.Generator().manual_seed(0)
    inverse = {i: t for t, i in TOK.vocab.items()}
    bias = torch.zeros(V)
    bias[CODES + PIX + [START, END]] = 2.0
    seq = [int((torch.randn(V, generator=gen) * 3 + bias).argmax()) for _ in range(400)]
    with pytest.raises(AssertionError):
        _well_formed([inverse[i] for i in seq])


def _random_rows(gen: torch.Generator, n_rows: int, length: int) -> torch.Tensor:
    """Rows of random pieces: text, full or broken depth spans, points and boxes, stray tokens."""
    def rand(n: int) -> int:
        return int(torch.randint(n, (1,), generator=gen))

    def piece() -> list[int]:
        kind = rand(4)
        if kind == 0:
            return [[ID("Ġthe"), ID("Ġ("), ID(")."), ID(","), ID("A")][rand(5)] for _ in range(1 + rand(4))]
        if kind == 1:
            return [START] + [CODES[rand(128)] for _ in range(98 + rand(4))] + [END]
        if kind == 2:
            out = [ID("Ġ(")]
            for j in range(1 + rand(5)):
                out += ([ID(",")] if j else []) + [PIX[rand(336)]]
            return out + [ID(")")]
        return [[START, END, CODES[3], PIX[7]][rand(4)]]

    rows = []
    for _ in range(n_rows):
        row: list[int] = []
        while len(row) < length:
            row += piece()
        rows.append(row[:length])
    return torch.tensor(rows)


def seen_keys(rows: torch.Tensor, start: int) -> set:
    proc = DepthSpanLogitsProcessor(TOK)
    keys = set()
    for row in rows.tolist():
        st = proc.row_state([])
        for tok in row[start:]:
            proc.advance(st, tok)
            keys.add(proc.state_key(st)[:1])
    return keys


def test_incremental_states_equal_a_fresh_rescan_at_every_step():
    """The kept per-row states give the same masks as rescanning each row from scratch."""
    gen = torch.Generator().manual_seed(3)
    rows = torch.cat([torch.tensor([PROMPT] * 6), _random_rows(gen, 6, 240)], dim=1)
    incremental = DepthSpanLogitsProcessor(TOK, prompt_length=len(PROMPT))
    for width in range(len(PROMPT), rows.shape[1] + 1):
        got = incremental(rows[:, :width], torch.zeros(6, V))
        fresh = DepthSpanLogitsProcessor(TOK, prompt_length=len(PROMPT))(rows[:, :width], torch.zeros(6, V))
        assert torch.equal(got, fresh), width
    # The rows went through spans, full spans and groups (so every rule was compared).
    assert {("end",), ("codes",), ("comma",), ("above",)} <= seen_keys(rows, len(PROMPT))


def test_a_batch_that_does_not_continue_the_last_call_is_rescanned():
    """New prompt_length, reordered rows (beam search), or a new batch: no stale state."""
    gen = torch.Generator().manual_seed(4)
    rows = torch.cat([torch.tensor([PROMPT] * 4), _random_rows(gen, 4, 150)], dim=1)
    proc = DepthSpanLogitsProcessor(TOK, prompt_length=len(PROMPT))
    for width in range(len(PROMPT), 120):
        proc(rows[:, :width], torch.zeros(4, V))
    reordered = rows[[2, 0, 3, 1], :121]
    fresh = DepthSpanLogitsProcessor(TOK, prompt_length=len(PROMPT))
    assert torch.equal(proc(reordered, torch.zeros(4, V)), fresh(reordered, torch.zeros(4, V)))
    # Same width and same previous tokens, but the answer now starts later: setting
    # prompt_length drops the kept states.
    proc.prompt_length = 60
    later = DepthSpanLogitsProcessor(TOK, prompt_length=60)
    assert torch.equal(proc(reordered[:, :122], torch.zeros(4, V)), later(reordered[:, :122], torch.zeros(4, V)))


def test_one_step_touches_only_the_new_token():
    """O(1) per row per step: after the first call, advance() runs once per row per step."""
    gen = torch.Generator().manual_seed(5)
    rows = torch.cat([torch.tensor([PROMPT] * 3), _random_rows(gen, 3, 400)], dim=1)
    proc = DepthSpanLogitsProcessor(TOK, prompt_length=len(PROMPT))
    calls = 0
    advance = proc.advance

    def counting(st, tok):
        nonlocal calls
        calls += 1
        advance(st, tok)

    proc.advance = counting
    for width in range(len(PROMPT), rows.shape[1] + 1):
        proc(rows[:, :width], torch.zeros(3, V))
    assert calls == 3 * 400  # a rescan per step would be 3 * (0 + 1 + ... + 400)
