"""Depth maps -> code rows (int16, ``grid_size**2`` codes per image, row-major).

``extract_codes`` batches maps through the encoder under ``torch.inference_mode``; the
one-image-per-forward path mirrors the reference ``get_codes.py`` loop and exists to
measure what batching buys (benchmarks/bench_depth_tokens.py).

Batch size never changes a code. Convolution kernels pick their algorithm (and so the
last bits of the latents) by the batch's size, and a 1e-7 change flips a near-tie
between two codes. So the encoder always runs on micro-batches of exactly
``ENCODE_MICROBATCH`` maps (the last one padded with zero maps, whose outputs are
dropped), with cuDNN autotuning off, and the nearest code is found in float64 per latent
(``nearest_codes_exact``): a map's codes then depend only on the map, not on how many
maps were passed at once or which ones share its micro-batch.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from perception_tokens.vocab import encode_depth
from training.vqvae.data import batched, model_input
from training.vqvae.model import DepthVQVAE


ENCODE_MICROBATCH = 16


def encode_batch_invariant(model: DepthVQVAE, x: torch.Tensor, microbatch: int = ENCODE_MICROBATCH) -> torch.Tensor:
    """Codes [B, g, g] of ``x`` [B, 1, S, S], the same for a map whatever else is in ``x``.

    Call in eval mode under no_grad / inference_mode."""
    out = []
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
        for start in range(0, x.shape[0], microbatch):
            chunk = x[start : start + microbatch]
            n = chunk.shape[0]
            if n < microbatch:  # same shape every call -> same kernels -> same bits
                chunk = torch.cat([chunk, chunk.new_zeros((microbatch - n, *chunk.shape[1:]))])
            out.append(model.encode(chunk)[:n])
    return torch.cat(out)


def _encode_rows(model: DepthVQVAE, maps: list[np.ndarray], device: torch.device, microbatch: int = ENCODE_MICROBATCH) -> np.ndarray:
    # Mode switches stay inside this call: a generator must not leave inference_mode or
    # eval() switched on in the caller's code between yields.
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            x = model_input(maps, model.config).to(device, non_blocking=True)
            codes = encode_batch_invariant(model, x, microbatch)
            return codes.reshape(len(maps), -1).to(torch.int16).cpu().numpy()
    finally:
        model.train(was_training)


def _device(model: DepthVQVAE, device: str | torch.device | None) -> torch.device:
    if device is None:
        return next(model.parameters()).device
    device = torch.device(device)
    if next(model.parameters()).device != device:
        model.to(device)
    return device


def extract_codes(
    model: DepthVQVAE,
    maps: Iterable[np.ndarray],
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> Iterator[np.ndarray]:
    """Yield one int16 array [n, grid_size**2] per batch of up to ``batch_size`` maps, in order.

    ``device`` defaults to the model's (the model is moved there if another is named).
    """
    dev = _device(model, device)
    for chunk in batched(maps, batch_size):
        yield _encode_rows(model, chunk, dev)


def extract_codes_one_by_one(
    model: DepthVQVAE,
    maps: Iterable[np.ndarray],
    device: str | torch.device | None = None,
) -> Iterator[np.ndarray]:
    """Reference path: one plain batch-1 forward per image (get_codes.py's loop, for the
    benchmark); yields int16 arrays [grid_size**2]. Its codes may differ from
    ``extract_codes``'s at near-ties, as the reference's own GPU codes may."""
    dev = _device(model, device)
    for m in maps:
        yield _encode_rows(model, [m], dev, microbatch=1)[0]


def codes_to_token_strings(codes: np.ndarray) -> list[str]:
    """Code rows [n, 100] -> ``<DEPTH_START>...<DEPTH_END>`` strings (perception_tokens.vocab)."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None]
    return [encode_depth(row.tolist()) for row in codes]
