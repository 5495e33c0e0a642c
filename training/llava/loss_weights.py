"""Weights of the optional depth losses (``DepthLossWeights``): plain data, no torch, so the
fine-tune config loads without it (``training.llava.losses`` re-exports it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class DepthLossWeights:
    """Weight of each auxiliary depth loss; 0 turns it off (the default)."""

    marker: float = 0.0
    token: float = 0.0
    count: float = 0.0
    reconstruction: float = 0.0

    def any(self) -> bool:
        return any(v != 0 for v in asdict(self).values())
