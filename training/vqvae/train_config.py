"""The VQ-VAE trainer's configuration and result (training/vqvae/train.py runs them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch


TRAIN_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class VQVAETrainConfig:
    """Optimisation settings. ``lr`` decays by ``lr_decay_gamma`` (ExponentialLR): after
    every epoch when ``lr_decay_every`` is 0 (the project's schedule), else after the
    batches of each epoch whose 0-based index is a multiple of ``lr_decay_every`` (the
    reference's ``if iter % schedule_step == 0: sched.step()``, train_depth_vqvae_dist.py:116,
    which also decays after each epoch's first batch). ``drop_last`` skips an epoch's last
    short batch (the reference's DataLoader, train_depth_vqvae_dist.py:168). ``epochs`` may
    be 0 only with initial weights (the model is adopted as is).
    ``checkpoint_every_steps`` = 0 checkpoints only at epoch ends.
    ``shuffle_buffer`` bounds the memory of the per-epoch shuffle (a full shuffle when the
    data set fits); ``shuffle: permutation`` instead visits the epoch's maps in one full
    ``rng.permutation`` (the reference's DataLoader ``shuffle=True``, train_depth_vqvae_dist.py:164-168).
    ``device``: "cpu", "cuda", "cuda:1", ... or "auto".
    ``dtype``: the arithmetic of training, "float32" or "float64". float64 makes N ranks and
    one process agree to ~1e-15 (in float32 the different summation orders drift ~1e-4 within a
    few Adam steps, by CPU kernel); the saved weights are float32 either way."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    lr_decay_gamma: float = 0.98
    lr_decay_every: int = 0
    drop_last: bool = False
    seed: int = 0
    checkpoint_every_steps: int = 0
    shuffle_buffer: int = 4096
    shuffle: str = "buffer"  # "buffer": bounded-buffer shuffle (the project's); "permutation": the reference's
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 0:
            problems.append(f"epochs must be >= 0, got {self.epochs}")
        if self.lr_decay_every < 0:
            problems.append(f"lr_decay_every must be >= 0, got {self.lr_decay_every}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.lr_decay_gamma <= 1:
            problems.append(f"lr_decay_gamma must be in (0, 1], got {self.lr_decay_gamma}")
        if self.checkpoint_every_steps < 0:
            problems.append(f"checkpoint_every_steps must be >= 0, got {self.checkpoint_every_steps}")
        if self.shuffle not in ("buffer", "permutation"):
            problems.append(f"shuffle must be 'buffer' or 'permutation', got {self.shuffle!r}")
        if self.shuffle_buffer < 1:
            problems.append(f"shuffle_buffer must be >= 1, got {self.shuffle_buffer}")
        if self.dtype not in TRAIN_DTYPES:
            problems.append(f"dtype must be one of {sorted(TRAIN_DTYPES)}, got {self.dtype!r}")
        if problems:
            raise ValueError("invalid VQVAETrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VQVAETrainConfig":
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown VQVAETrainConfig keys: {unknown}")
        return cls(**data)


@dataclass
class VQVAETrainResult:
    """What a training run produced. ``loss_history`` has one dict per step (step, epoch,
    loss, recon, commit, lr); ``epoch_metrics`` one per epoch (means over the epoch's
    batches, and codebook usage / perplexity from code counts over the whole epoch)."""

    out_dir: Path
    weights_path: Path
    config_path: Path
    step: int
    epoch: int
    loss_history: list[dict[str, float]] = field(default_factory=list)
    epoch_metrics: list[dict[str, float]] = field(default_factory=list)
    resumed_from_step: int | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
