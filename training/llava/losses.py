"""Optional Perceptio-style depth losses on top of the language-model loss (all off by default).

All functions take the model's ``logits [B, T, V]`` and the training ``labels [B, T]``
(-100 = not a target) *unshifted*, as the model returns them, and apply the causal shift
themselves (logits at t predict the label at t+1). Depth spans are found in the labels:
``<DEPTH_START>`` + 100 codes + ``<DEPTH_END>``; spans cut short (truncation) are skipped.

- ``marker_loss``: at every supervised position, a 3-way cross-entropy over
  {START, END, anything else} from the full softmax: markers where the labels have them,
  no markers elsewhere.
- ``token_loss``: cross-entropy at depth-code positions over only the 128 code logits.
- ``count_loss``: under teacher forcing, the probability that END comes after exactly k
  codes is ``h_k * prod_{j<k}(1 - h_j)`` with ``h_k = p(END)`` after k codes; the loss is
  the expected ``|k - 100| / 100`` (mass with no END by 101 positions counts as 1/100).
- ``reconstruction_loss``: softmax over the 128 code logits at the 100 code positions
  weights the codebook rows (a soft, differentiable quantized map ``[D, 10, 10]``), the
  VQ-VAE decoder turns it into depth, compared (MSE, as Perceptio sec. 3.4.3) with the depth decoded from the
  target codes.

The VQ-VAE is passed in as a codebook tensor and a decoder callable, so this module does
not depend on the VQ-VAE package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from perception_tokens.vocab import (
    DEPTH_END,
    DEPTH_GRID,
    DEPTH_SPAN,
    DEPTH_START,
    NUM_DEPTH_CODES,
    depth_code_token,
)

# the weights have no torch in them: the fine-tune config (and the Dagster definitions) import them
from training.llava.loss_weights import DepthLossWeights  # noqa: E402,F401 (re-exported)

IGNORE_INDEX = -100
Decoder = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DepthTokenIds:
    """Ids of the depth tokens in one tokenizer (from the tokenizer, never constants)."""

    start: int
    end: int
    codes: tuple[int, ...]  # codes[k] = id of <DEPTH_k>

    @classmethod
    def from_token_map(cls, token_map: Mapping[str, int] | object) -> "DepthTokenIds":
        ids = token_map.ids if hasattr(token_map, "ids") else token_map
        return cls(
            start=int(ids[DEPTH_START]),
            end=int(ids[DEPTH_END]),
            codes=tuple(int(ids[depth_code_token(k)]) for k in range(NUM_DEPTH_CODES)),
        )

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "DepthTokenIds":
        conv = tokenizer.convert_tokens_to_ids
        return cls(
            start=int(conv(DEPTH_START)),
            end=int(conv(DEPTH_END)),
            codes=tuple(int(conv(depth_code_token(k))) for k in range(NUM_DEPTH_CODES)),
        )


def _shift(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return logits[:, :-1, :], labels[:, 1:]


def _zero(logits: torch.Tensor) -> torch.Tensor:
    # Keeps the graph connected (DDP wants every trainable output used) and the dtype right.
    return logits.sum() * 0.0


def _code_index(labels: torch.Tensor, ids: DepthTokenIds) -> torch.Tensor:
    """Per label, its code number 0..127, or -1 when it is not a depth code."""
    lookup = torch.full((int(max(ids.codes)) + 1,), -1, dtype=torch.long, device=labels.device)
    lookup[torch.tensor(ids.codes, device=labels.device)] = torch.arange(NUM_DEPTH_CODES, device=labels.device)
    safe = labels.clamp(min=0, max=lookup.numel() - 1)
    out = lookup[safe]
    out[(labels < 0) | (labels >= lookup.numel())] = -1
    return out


def find_label_spans(labels: torch.Tensor, ids: DepthTokenIds) -> list[tuple[int, int]]:
    """``(batch, index of START)`` in ``labels [B, T]`` for every complete, well-formed span."""
    spans = []
    codes = _code_index(labels, ids)
    for b, j in (labels == ids.start).nonzero().tolist():
        end_at = j + DEPTH_SPAN + 1
        if end_at >= labels.shape[1] or int(labels[b, end_at]) != ids.end:
            continue
        if bool((codes[b, j + 1 : end_at] >= 0).all()):
            spans.append((b, j))
    return spans


def marker_loss(logits: torch.Tensor, labels: torch.Tensor, ids: DepthTokenIds) -> torch.Tensor:
    """Mean over supervised positions of CE over {START, END, other}."""
    logits, labels = _shift(logits, labels)
    mask = labels != IGNORE_INDEX
    if not bool(mask.any()):
        return _zero(logits)
    logp = logits[mask].float().log_softmax(-1)
    lp_start, lp_end = logp[:, ids.start], logp[:, ids.end]
    # log(1 - p_start - p_end), stable: logsumexp of every other token's log-prob.
    keep = torch.ones(logp.shape[-1], dtype=torch.bool, device=logp.device)
    keep[[ids.start, ids.end]] = False
    lp_other = logp[:, keep].logsumexp(-1)
    target = labels[mask]
    picked = torch.where(target == ids.start, lp_start, torch.where(target == ids.end, lp_end, lp_other))
    return -picked.mean()


def token_loss(logits: torch.Tensor, labels: torch.Tensor, ids: DepthTokenIds) -> torch.Tensor:
    """CE at depth-code positions, over the 128 code logits only."""
    logits, labels = _shift(logits, labels)
    codes = _code_index(labels, ids)
    mask = codes >= 0
    if not bool(mask.any()):
        return _zero(logits)
    code_logits = logits[mask][:, list(ids.codes)].float()
    return F.cross_entropy(code_logits, codes[mask])


def span_length_distribution(end_probs: torch.Tensor) -> torch.Tensor:
    """``end_probs [S, 101]`` = p(END) after k codes -> ``[S, 102]``: P(length=k) for k<=100, then P(>100)."""
    survive = torch.cumprod(1.0 - end_probs, dim=-1)  # P(no END up to and including k)
    before = torch.cat([torch.ones_like(survive[:, :1]), survive[:, :-1]], dim=-1)
    return torch.cat([end_probs * before, survive[:, -1:]], dim=-1)


def count_loss(logits: torch.Tensor, labels: torch.Tensor, ids: DepthTokenIds) -> torch.Tensor:
    """Expected ``|predicted span length - 100| / 100`` under teacher forcing, mean over spans."""
    logits, labels = _shift(logits, labels)
    spans = find_label_spans(labels, ids)
    if not spans:
        return _zero(logits)
    rows = []
    for b, j in spans:
        window = logits[b, j + 1 : j + DEPTH_SPAN + 2].float()  # predictions after 0..100 codes
        rows.append(window.softmax(-1)[:, ids.end])
    dist = span_length_distribution(torch.stack(rows))
    lengths = torch.arange(DEPTH_SPAN + 2, device=dist.device, dtype=dist.dtype)
    deviation = (lengths - DEPTH_SPAN).abs()  # the overflow bucket (101) counts as 1
    return (dist * deviation).sum(-1).mean() / DEPTH_SPAN


def soft_quantized(code_logits: torch.Tensor, codebook: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``code_logits [S, 100, 128]`` x ``codebook [128, D]`` -> ``[S, D, 10, 10]`` (row-major grid)."""
    weights = (code_logits.float() / temperature).softmax(-1)
    emb = weights @ codebook.float()  # [S, 100, D]
    return emb.transpose(1, 2).reshape(emb.shape[0], -1, DEPTH_GRID, DEPTH_GRID)


def hard_quantized(codes: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``codes [S, 100]`` -> codebook rows as ``[S, D, 10, 10]``."""
    emb = codebook.float()[codes]
    return emb.transpose(1, 2).reshape(emb.shape[0], -1, DEPTH_GRID, DEPTH_GRID)


def reconstruction_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ids: DepthTokenIds,
    codebook: torch.Tensor,
    decoder: Decoder,
    temperature: float = 1.0,
) -> torch.Tensor:
    """MSE (Perceptio sec. 3.4.3) between the decoder's depth from soft-merged codes and from the target codes."""
    logits, labels = _shift(logits, labels)
    spans = find_label_spans(labels, ids)
    if not spans:
        return _zero(logits)
    code_cols = list(ids.codes)
    pred_logits = torch.stack([logits[b, j + 1 : j + 1 + DEPTH_SPAN][:, code_cols] for b, j in spans])
    target_codes = torch.stack([_code_index(labels[b, j + 1 : j + 1 + DEPTH_SPAN], ids) for b, j in spans])
    codebook = codebook.to(logits.device)
    predicted = decoder(soft_quantized(pred_logits, codebook, temperature))
    with torch.no_grad():
        target = decoder(hard_quantized(target_codes, codebook))
    return F.mse_loss(predicted.float(), target.float())


def depth_losses(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ids: DepthTokenIds,
    weights: DepthLossWeights,
    codebook: torch.Tensor | None = None,
    decoder: Decoder | None = None,
) -> dict[str, torch.Tensor]:
    """Every enabled loss by name, plus ``"total"`` = the weighted sum."""
    out: dict[str, torch.Tensor] = {}
    if weights.marker:
        out["marker"] = marker_loss(logits, labels, ids)
    if weights.token:
        out["token"] = token_loss(logits, labels, ids)
    if weights.count:
        out["count"] = count_loss(logits, labels, ids)
    if weights.reconstruction:
        if codebook is None or decoder is None:
            raise ValueError("reconstruction loss needs the VQ-VAE codebook and decoder")
        out["reconstruction"] = reconstruction_loss(logits, labels, ids, codebook, decoder)
    total = _zero(logits)
    for name, value in out.items():
        total = total + getattr(weights, name) * value
    out["total"] = total
    return out
