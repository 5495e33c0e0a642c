"""LoRA on Qwen2.5-VL's language model; new-token rows and the patch merger trainable.

What trains (everything else is frozen, the ViT blocks included):
- LoRA on ``model.language_model``'s attention and MLP linears. The regex is anchored on
  ``language_model`` because the Qwen2.5-VL ViT has its own ``gate_proj/up_proj/down_proj``;
- the perception tokens' rows: peft's ``trainable_token_indices`` on ``embed_tokens`` (and on
  ``lm_head`` when the head is untied; with a tied head peft ties the row adapter to it), or
  the whole matrices with ``modules_to_save``;
- the patch merger (``visual.merger``, Qwen's vision->language projector), fully, at its own LR.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from training.llava.lora import LoraSettings, language_model_target_regex, quiet_peft, upcast_trainable_parameters
from training.llava.lora import trainable_summary as llava_trainable_summary
from training.llava.model import TokenMap

MERGER = "merger"
VISION = "visual"


def heads_tied(model: torch.nn.Module) -> bool:
    """True when lm_head shares its weight with embed_tokens (Qwen2.5-VL-3B; not 7B)."""
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


def build_lora_config(token_map: TokenMap, settings: LoraSettings, *, tied: bool) -> LoraConfig:
    token_ids = token_map.id_list()
    modules_to_save = [MERGER]
    trainable_tokens = None
    if settings.new_token_mode == "trainable_token_indices":
        trainable_tokens = {"embed_tokens": token_ids} if tied else {"embed_tokens": token_ids, "lm_head": token_ids}
    else:
        modules_to_save += ["embed_tokens"] if tied else ["embed_tokens", "lm_head"]
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=language_model_target_regex(settings.target_modules),
        modules_to_save=modules_to_save,
        trainable_token_indices=trainable_tokens,
        ensure_weight_tying=tied,
        bias="none",
        task_type="CAUSAL_LM",
    )


def apply_lora(model: torch.nn.Module, token_map: TokenMap, settings: LoraSettings) -> PeftModel:
    """Wrap ``model`` (perception tokens already added) into a trainable PeftModel; checks the ViT is frozen."""
    with quiet_peft(), warnings.catch_warnings():
        # peft warns that no tied module is in modules_to_save; the tie we need is the token rows', which it applies
        warnings.filterwarnings("ignore", message=".*ensure_weight_tying.*", category=UserWarning)
        peft_model = get_peft_model(model, build_lora_config(token_map, settings, tied=heads_tied(model)))
    upcast_trainable_parameters(peft_model)
    for name, param in peft_model.named_parameters():
        if f"{VISION}." in name and f".{MERGER}." not in name and param.requires_grad:
            raise RuntimeError(f"vision tower parameter {name} would train; the LoRA targets are wrong")
    return peft_model


def param_groups(model: torch.nn.Module, settings: LoraSettings) -> list[dict[str, Any]]:
    """Trainable params: the merger at ``projector_lr``, the rest at ``lr`` (sorted by name, for resume)."""
    merger, rest = [], []
    for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if param.requires_grad:
            (merger if f".{MERGER}." in name else rest).append(param)
    groups = [{"params": rest, "lr": settings.lr, "weight_decay": settings.weight_decay, "name": "lora_and_tokens"}]
    if merger:
        groups.append({"params": merger, "lr": settings.projector_lr, "weight_decay": settings.weight_decay,
                       "name": "projector"})
    return groups


def trainable_summary(model: torch.nn.Module) -> dict[str, int]:
    """Counts of trainable parameters by part; the merger is the projector."""
    return llava_trainable_summary(model, projector=f".{MERGER}.")
