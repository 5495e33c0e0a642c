"""LoRA on LLaVA-1.5: the shared wiring (training/finetune/lora.py) with LLaVA's names.

LLaVA-1.5 does not tie ``lm_head`` to ``embed_tokens``, so both carry the new rows; the
``multi_modal_projector`` is the projector; the CLIP ``vision_tower`` stays frozen.
"""

from __future__ import annotations

from typing import Any

import torch
from peft import LoraConfig, PeftModel

from training.finetune import lora as shared
from training.finetune.lora import LoraSettings
from training.finetune.tokens import TokenMap

PROJECTOR = "multi_modal_projector"
VISION = "vision_tower"


def build_lora_config(token_map: TokenMap, settings: LoraSettings) -> LoraConfig:
    """The peft config for ``settings`` with the token ids of ``token_map``."""
    return shared.build_lora_config(token_map.id_list(), settings, projector=PROJECTOR, tied=False)


def apply_lora(model: torch.nn.Module, token_map: TokenMap, settings: LoraSettings) -> PeftModel:
    """Wrap ``model`` (perception tokens already added) into a trainable PeftModel."""
    return shared.wrap_with_lora(model, build_lora_config(token_map, settings), is_vision=lambda name: VISION in name)


def param_groups(model: torch.nn.Module, settings: LoraSettings) -> list[dict[str, Any]]:
    """The projector at ``projector_lr``, the rest at ``lr``."""
    return shared.param_groups(model, settings, projector=PROJECTOR)


def trainable_summary(model: torch.nn.Module) -> dict[str, int]:
    """Counts of trainable parameters by part."""
    return shared.trainable_summary(model, projector=PROJECTOR)
