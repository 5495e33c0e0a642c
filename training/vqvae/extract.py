"""Depth maps -> code rows (int16, ``grid_size**2`` codes per image, row-major).

``extract_codes`` batches maps through the encoder under ``torch.inference_mode``; the
one-image-per-forward path mirrors the reference ``get_codes.py`` loop and exists to
measure what batching buys (benchmarks/bench_depth_tokens.py).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from perception_tokens.vocab import encode_depth
from training.vqvae.data import batched, model_input
from training.vqvae.model import DepthVQVAE


def _encode_rows(model: DepthVQVAE, maps: list[np.ndarray], device: torch.device) -> np.ndarray:
    # Mode switches stay inside this call: a generator must not leave inference_mode or
    # eval() switched on in the caller's code between yields.
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            x = model_input(maps, model.config).to(device, non_blocking=True)
            codes = model.encode(x)
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
    """Reference path: one forward per image; yields int16 arrays [grid_size**2]."""
    dev = _device(model, device)
    for m in maps:
        yield _encode_rows(model, [m], dev)[0]


def codes_to_token_strings(codes: np.ndarray) -> list[str]:
    """Code rows [n, 100] -> ``<DEPTH_START>...<DEPTH_END>`` strings (perception_tokens.vocab)."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None]
    return [encode_depth(row.tolist()) for row in codes]
