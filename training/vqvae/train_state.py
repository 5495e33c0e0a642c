"""The resumable part of a VQ-VAE training run: per-epoch sums, RNG state, and the state file.

``train_state.pt`` holds plain tensors / dicts / lists / numbers only, read back with
``torch.load(weights_only=True)``; a truncated or foreign file is an error naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.vqvae.checkpoint import atomic_write
from training.vqvae.metrics import CodeUsage

STATE_NAME = "train_state.pt"
STATE_FORMAT = 1

# Train-config fields that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"epochs", "checkpoint_every_steps", "device"}


class EpochAccumulator:
    """Sums over one epoch's batches; survives checkpoints so a resumed epoch reports the same."""

    def __init__(self, codebook_size: int) -> None:
        self.usage = CodeUsage(codebook_size)
        self.loss = self.recon = self.commit = 0.0
        self.batches = self.images = self.restarts = 0

    def add(self, loss: float, recon: float, commit: float, codes: torch.Tensor, restarts: int) -> None:
        self.loss += loss
        self.recon += recon
        self.commit += commit
        self.batches += 1
        self.images += int(codes.shape[0])
        self.restarts += restarts
        self.usage.update(codes)

    def to_state(self) -> dict[str, Any]:
        return {
            "code_counts": torch.from_numpy(self.usage.counts.copy()),
            "sums": {"loss": self.loss, "recon": self.recon, "commit": self.commit},
            "counts": {"batches": self.batches, "images": self.images, "restarts": self.restarts},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.usage.counts = state["code_counts"].numpy().astype(np.int64).copy()
        self.loss, self.recon, self.commit = (float(state["sums"][k]) for k in ("loss", "recon", "commit"))
        self.batches, self.images, self.restarts = (int(state["counts"][k]) for k in ("batches", "images", "restarts"))

    def summary(self) -> dict[str, float]:
        n = max(self.batches, 1)
        out: dict[str, float] = {
            "loss": self.loss / n,
            "recon": self.recon / n,
            "commit": self.commit / n,
            "n_images": self.images,
            "n_batches": self.batches,
            "dead_code_restarts": self.restarts,
        }
        out.update(self.usage.stats())
        return out


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def config_differences(saved: dict[str, Any], now: dict[str, Any], ignore: set[str] = frozenset()) -> list[str]:
    keys = (set(saved) | set(now)) - ignore
    return [f"{k}: checkpoint {saved.get(k)!r} vs now {now.get(k)!r}" for k in sorted(keys) if saved.get(k) != now.get(k)]


def save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which one
        raise ValueError(f"{path}: cannot read training state: {e}") from e
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not a depth VQ-VAE training state (format {STATE_FORMAT})")
    return state
