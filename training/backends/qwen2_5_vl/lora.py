"""LoRA on Qwen2.5-VL: the shared wiring (training/finetune/lora.py) with Qwen's names.

The regex anchored on ``language_model`` matters here: the Qwen2.5-VL ViT has its own
``gate_proj/up_proj/down_proj``. The new rows go on ``embed_tokens`` (and on ``lm_head`` when
the head is untied; with a tied head peft ties the row adapter to it). The patch merger
(``visual.merger``, Qwen's vision->language projector) trains fully at its own LR; the ViT
blocks stay frozen.
"""

from __future__ import annotations

from typing import Any

import torch
from peft import LoraConfig, PeftModel

from training.finetune import lora as shared
from training.finetune.lora import LoraSettings
from training.finetune.tokens import TokenMap

MERGER = "merger"
VISION = "visual"
PROJECTOR_PARAMS = f".{MERGER}."  # substring of the merger's parameter names


def heads_tied(model: torch.nn.Module) -> bool:
    """True when lm_head shares its weight with embed_tokens (Qwen2.5-VL-3B; not 7B)."""
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


def build_lora_config(token_map: TokenMap, settings: LoraSettings, *, tied: bool) -> LoraConfig:
    return shared.build_lora_config(token_map.id_list(), settings, projector=MERGER, tied=tied)


def apply_lora(model: torch.nn.Module, token_map: TokenMap, settings: LoraSettings) -> PeftModel:
    """Wrap ``model`` (perception tokens already added) into a trainable PeftModel; checks the ViT is frozen."""
    config = build_lora_config(token_map, settings, tied=heads_tied(model))
    return shared.wrap_with_lora(model, config, is_vision=lambda name: f"{VISION}." in name and PROJECTOR_PARAMS not in name)


def param_groups(model: torch.nn.Module, settings: LoraSettings) -> list[dict[str, Any]]:
    """Trainable params: the merger at ``projector_lr``, the rest at ``lr``."""
    return shared.param_groups(model, settings, projector=PROJECTOR_PARAMS)


def trainable_summary(model: torch.nn.Module) -> dict[str, int]:
    """Counts of trainable parameters by part; the merger is the projector."""
    return shared.trainable_summary(model, projector=PROJECTOR_PARAMS)
