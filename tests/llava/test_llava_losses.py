"""Depth losses on hand-made logits, with values worked out by hand."""

import math

import pytest
import torch

from training.llava.losses import (
    DepthLossWeights,
    DepthTokenIds,
    count_loss,
    depth_losses,
    find_label_spans,
    hard_quantized,
    marker_loss,
    reconstruction_loss,
    soft_quantized,
    span_length_distribution,
    token_loss,
)

# A toy vocabulary: 0 = some word, 1 = <DEPTH_START>, 2 = <DEPTH_END>, 3..130 = <DEPTH_0..127>.
IDS = DepthTokenIds(start=1, end=2, codes=tuple(range(3, 131)))
V = 131
NEG = -1e4


def span_labels(codes, prefix=1):
    """Labels ``[-100]*prefix + START + codes + END`` as a [1, T] tensor."""
    return torch.tensor([[-100] * prefix + [IDS.start] + [IDS.codes[c] for c in codes] + [IDS.end]])


def test_marker_loss_exact_on_uniform_logits():
    labels = torch.tensor([[-100, IDS.start, IDS.codes[5], IDS.end]])
    logits = torch.zeros(1, 4, V)
    # Targets after the shift: START, a code (class "other": 129 of 131 tokens), END.
    expected = (2 * math.log(V) - math.log(129 / V)) / 3
    assert marker_loss(logits, labels, IDS).item() == pytest.approx(expected, rel=1e-6)


def test_marker_loss_zero_when_markers_predicted_right_and_nowhere_else():
    labels = torch.tensor([[-100, IDS.start, IDS.codes[5], IDS.end]])
    logits = torch.full((1, 4, V), NEG)
    logits[0, 0, IDS.start] = 0  # predicts START
    logits[0, 1, IDS.codes[9]] = 0  # a wrong code is still "not a marker": no marker penalty
    logits[0, 2, IDS.end] = 0
    assert marker_loss(logits, labels, IDS).item() == pytest.approx(0.0, abs=1e-6)
    logits[0, 1, IDS.codes[9]] = NEG
    logits[0, 1, IDS.end] = 0  # END one step early: class "other" gets no mass
    assert marker_loss(logits, labels, IDS).item() > 1000


def test_token_loss_only_over_code_logits():
    labels = torch.tensor([[-100, IDS.start, IDS.codes[5], IDS.codes[7], IDS.end]])
    logits = torch.zeros(1, 5, V)
    logits[:, :, 0] = 50.0  # a huge non-code logit must not matter
    assert token_loss(logits, labels, IDS).item() == pytest.approx(math.log(128), rel=1e-6)
    logits[0, 1, IDS.codes[5]] = 2.0  # position 1 predicts label 2 (= code 5)
    expected = ((-2.0 + math.log(math.exp(2.0) + 127)) + math.log(128)) / 2
    assert token_loss(logits, labels, IDS).item() == pytest.approx(expected, rel=1e-6)


def test_token_loss_zero_without_codes_and_keeps_graph():
    logits = torch.zeros(1, 3, V, requires_grad=True)
    loss = token_loss(logits, torch.tensor([[-100, 0, 0]]), IDS)
    assert loss.item() == 0.0 and loss.requires_grad


def _count_logits(end_prob_at: dict[int, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits for one full span where p(END) after k codes is end_prob_at.get(k, 0)."""
    labels = span_labels([k % 128 for k in range(100)])  # T = 103, START label at index 1
    logits = torch.full((1, labels.shape[1], V), NEG)
    logits[0, :, 0] = 0.0
    for k in range(101):
        p = end_prob_at.get(k, 0.0)
        pos = 1 + k  # unshifted logits at START's position + k predict the token after k codes
        if p >= 1.0:
            logits[0, pos, 0], logits[0, pos, IDS.end] = NEG, 0.0
        elif p > 0:
            logits[0, pos, IDS.end] = math.log(p / (1 - p))
    return logits, labels


@pytest.mark.parametrize(
    "end_probs, expected",
    [
        ({100: 1.0}, 0.0),  # END exactly after 100 codes
        ({50: 1.0}, 0.5),  # END after 50: |50 - 100| / 100
        ({}, 0.01),  # never ends within the window: overflow counts as 1 / 100
        ({99: 0.5, 100: 1.0}, 0.005),  # half the mass one short
        ({98: 0.5, 100: 0.5}, 0.5 * 0.02 + 0.25 * 0.01),  # 0.5 at 98, 0.25 at 100, 0.25 overflow
    ],
)
def test_count_loss_exact(end_probs, expected):
    logits, labels = _count_logits(end_probs)
    assert count_loss(logits, labels, IDS).item() == pytest.approx(expected, abs=1e-6)


def test_span_length_distribution_sums_to_one():
    h = torch.rand(3, 101)
    dist = span_length_distribution(h)
    assert dist.shape == (3, 102)
    assert torch.allclose(dist.sum(-1), torch.ones(3), atol=1e-6)


def test_find_label_spans_skips_truncated_and_malformed():
    full = span_labels(list(range(100)))
    assert find_label_spans(full, IDS) == [(0, 1)]
    assert find_label_spans(full[:, :-1], IDS) == []  # END cut off
    broken = full.clone()
    broken[0, 10] = 0  # a word inside the span
    assert find_label_spans(broken, IDS) == []


def test_quantized_grids_are_row_major():
    codebook = torch.arange(128, dtype=torch.float32)[:, None]  # D = 1, row k = [k]
    grid = hard_quantized(torch.arange(100)[None], codebook)
    assert grid.shape == (1, 1, 10, 10)
    assert grid[0, 0, 3, 7].item() == 37
    one_hot = torch.full((1, 100, 128), NEG)
    one_hot[0, torch.arange(100), torch.arange(100)] = 0
    assert torch.allclose(soft_quantized(one_hot, codebook), grid)


def test_reconstruction_loss_exact_and_differentiable():
    codes = [(7 * i) % 128 for i in range(100)]
    labels = span_labels(codes)
    codebook = torch.stack([torch.arange(128.0), torch.zeros(128)], dim=1)  # D = 2: [k, 0]
    decoder = lambda q: q[:, 0]  # noqa: E731  "depth" = channel 0
    logits = torch.zeros(1, labels.shape[1], V, requires_grad=True)
    loss = reconstruction_loss(logits, labels, IDS, codebook, decoder)
    # Uniform code logits: every cell is the mean codebook row, 63.5; Perceptio's distance is the MSE (sec. 3.4.3)
    expected = sum((63.5 - c) ** 2 for c in codes) / 100
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    sharp = torch.zeros(1, labels.shape[1], V)
    for i, c in enumerate(codes):
        sharp[0, 1 + i, IDS.codes[c]] = 100.0  # position START+i predicts code i
    assert reconstruction_loss(sharp, labels, IDS, codebook, decoder).item() == pytest.approx(0.0, abs=1e-4)


def test_depth_losses_weighted_total_and_off_by_default():
    assert not DepthLossWeights().any()
    labels = span_labels([k % 128 for k in range(100)])
    logits = torch.randn(1, labels.shape[1], V, generator=torch.Generator().manual_seed(0))
    w = DepthLossWeights(marker=0.5, token=2.0, count=3.0)
    out = depth_losses(logits, labels, IDS, w)
    assert set(out) == {"marker", "token", "count", "total"}
    expected = 0.5 * out["marker"] + 2.0 * out["token"] + 3.0 * out["count"]
    assert out["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert depth_losses(logits, labels, IDS, DepthLossWeights())["total"].item() == 0.0
    with pytest.raises(ValueError, match="codebook"):
        depth_losses(logits, labels, IDS, DepthLossWeights(reconstruction=1.0))


def test_depth_token_ids_from_tokenizer_like_mapping():
    mapping = {"<DEPTH_START>": 10, "<DEPTH_END>": 11, **{f"<DEPTH_{k}>": 100 + k for k in range(128)}}
    ids = DepthTokenIds.from_token_map(mapping)
    assert ids.start == 10 and ids.end == 11 and ids.codes[0] == 100 and ids.codes[127] == 227
