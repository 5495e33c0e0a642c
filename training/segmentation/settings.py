"""The fine-tune's segmentation settings (``finetune.segmentation``); torch-free, so configs load cheaply."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class SegmentationSettings:
    """Whether the run trains Perceptio's [SEG] -> SAM2 head, on which SAM2, with which loss weights.

    Perceptio (sec. 3.4.2) combines pixel-wise binary cross-entropy and DICE between the
    predicted and the ground-truth mask, each with a weight, and the segmentation loss with a
    weight of its own in the total (eq. 2); the values are in its sec. 3.5, which the notes we
    have (shared/papers/perceptio-2603.18795-notes.txt) cut off. The defaults are LISA's
    (bce 2.0, dice 0.5, segmentation 1.0), the recipe Perceptio's [SEG] design follows; see
    docs/FIDELITY.md "Perceptio".
    """

    enabled: bool = False
    sam2_checkpoint: str = "tiny"  # "tiny" (built from a config) or a facebook/sam2.1-hiera-* id / local folder
    weight: float = 1.0  # of the segmentation loss in the total
    bce_weight: float = 2.0
    dice_weight: float = 0.5
    lr: float | None = None  # mask decoder + projection; None: the run's learning rate

    def __post_init__(self) -> None:
        for name in ("weight", "bce_weight", "dice_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"segmentation.{name} must be >= 0, got {getattr(self, name)}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"segmentation.lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
