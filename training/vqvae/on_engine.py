"""Depth-code extraction through :mod:`perception_tokens.engine` (in-process or on Ray).

On Ray each actor loads the VQ-VAE from ``model_path`` once (the path must be readable
from the workers: shared disk or object storage) and encodes whole batches of depth
maps; batches keep their boundaries and order, so codes equal the in-process ones.
"""

from __future__ import annotations

from functools import partial
from typing import Iterable, Iterator

import numpy as np

from perception_tokens.engine import EngineSettings, map_batches
from training.vqvae.checkpoint import load_vqvae
from training.vqvae.extract import extract_codes


class _CodeWorker:
    def __init__(self, model_path: str):
        self.model = load_vqvae(model_path)

    def __call__(self, maps: list[np.ndarray]) -> list[np.ndarray]:
        return list(extract_codes(self.model, maps, batch_size=len(maps)))


def code_batches(engine: EngineSettings, model_path: str, maps: Iterable[np.ndarray], *, batch_size: int,
                 model=None) -> Iterator[np.ndarray]:
    """One int16 array [n, 100] per batch, in order (``model``, if loaded, serves in-process)."""
    if engine.kind == "inprocess":
        yield from extract_codes(model if model is not None else load_vqvae(model_path), maps, batch_size=batch_size)
        return
    for arrays in map_batches(partial(_CodeWorker, str(model_path)), maps, batch_size=batch_size, engine=engine):
        yield from arrays
