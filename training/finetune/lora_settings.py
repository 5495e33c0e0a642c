"""LoRA hyper-parameters (``LoraSettings``): plain data, no torch or peft, so the fine-tune config and
the Dagster definitions that hash it load without them (``training.finetune.lora`` re-exports these)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

LANGUAGE_LINEAR_LAYERS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
NewTokenMode = Literal["trainable_token_indices", "modules_to_save"]


@dataclass
class LoraSettings:
    """LoRA hyper-parameters (Aurora / LLaVA-1.5 LoRA defaults: r=128, alpha=256)."""

    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: tuple[str, ...] = LANGUAGE_LINEAR_LAYERS
    new_token_mode: NewTokenMode = "trainable_token_indices"
    projector_lr: float = 2e-5
    lr: float = 2e-4
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        if self.new_token_mode not in ("trainable_token_indices", "modules_to_save"):
            raise ValueError(f"new_token_mode must be trainable_token_indices or modules_to_save, got {self.new_token_mode!r}")
        if self.r <= 0 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ValueError(f"invalid LoRA settings r={self.r} alpha={self.alpha} dropout={self.dropout}")
        if not self.target_modules:
            raise ValueError("target_modules is empty")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d
