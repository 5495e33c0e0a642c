"""The fine-tune's VPT settings (``finetune.vpt``); torch-free, so configs load cheaply.

Every default is VPT's (arXiv 2502.17425) where the paper gives one, else marked "paper silent"
here and in docs/FIDELITY.md "VPT".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class VptSettings:
    """Whether a run trains VPT's perception tokens, on which grid, with which re-encoder, in which stages.

    ``enabled`` (off: no VPT token is added, the run is the family's ordinary fine-tune);
    ``grid`` k of the k x k region grid (Sec. 3.1: k = 8); ``reencoder`` the DINOv2 behind
    ``<REENCODE_CONTROL>`` ("tiny" from a config, or ``facebook/dinov2-*`` / a local folder; Sec. 4.1:
    DINOv2 is the best of DINO / SAM / CLIP); ``mask_modeling`` the seeded share of re-encoding
    samples whose answer sees only the control token (Sec. 3.2: 50%); ``align_epochs`` stage 1's
    passes over its samples (only the projector and the new token rows train), ``align_lr`` its
    learning rate (None: the run's ``lr``); ``projector_heads`` the cross-attention's heads (paper silent).
    """

    enabled: bool = False
    grid: int = 8
    reencoder: str = "tiny"
    control_tokens: int = 1  # Sec. 5.3: one control token is best (2 marginal, 4 worse); only 1 is built
    mask_modeling: float = 0.5
    align_epochs: float = 1.0
    align_lr: float | None = None
    projector_heads: int = 4
    max_actions: int = 4  # actions per answer at teacher forcing and generation (paper silent)

    def __post_init__(self) -> None:
        if self.grid < 1:
            raise ValueError(f"vpt.grid must be >= 1, got {self.grid}")
        if self.control_tokens != 1:
            raise ValueError(f"vpt.control_tokens: only 1 is built (the paper's best), got {self.control_tokens}")
        if not 0.0 <= self.mask_modeling <= 1.0:
            raise ValueError(f"vpt.mask_modeling must be a fraction in [0, 1], got {self.mask_modeling}")
        if self.align_epochs < 0:
            raise ValueError(f"vpt.align_epochs must be >= 0, got {self.align_epochs}")
        if self.align_lr is not None and self.align_lr <= 0:
            raise ValueError(f"vpt.align_lr must be > 0, got {self.align_lr}")
        if self.projector_heads < 1 or self.max_actions < 1:
            raise ValueError("vpt.projector_heads and vpt.max_actions must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
