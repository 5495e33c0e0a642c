"""LoRA wiring shared by the families: the settings, the peft config, the parameter groups.

What trains (everything else is frozen, the vision tower included):
- LoRA adapters on the language model's linear layers (attention + MLP), matched by a regex
  anchored on ``language_model`` so the vision tower's own ``q_proj``/``gate_proj``... never match;
- the perception tokens' rows of ``embed_tokens`` and ``lm_head``: only those rows with peft's
  ``trainable_token_indices`` (default, small adapters), or the whole matrices with
  ``modules_to_save`` (``new_token_mode="modules_to_save"``); a tied head has one matrix;
- the family's projector (LLaVA's ``multi_modal_projector``, Qwen's ``merger``), fully, at its own LR.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch
from peft import LoraConfig, PeftModel, get_peft_model

# the settings have no torch or peft in them: the Dagster definitions import them (code versions)
from training.finetune.lora_settings import LANGUAGE_LINEAR_LAYERS, LoraSettings, NewTokenMode  # noqa: F401


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """Warnings of peft that are not ours to act on: it probes a deprecated transformers attribute, and with a
    tied head it warns that no tied module is in modules_to_save (the tie we need is the token rows', which it applies)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*ensure_weight_tying.*", category=UserWarning)
        yield


def language_model_target_regex(target_modules: Sequence[str]) -> str:
    """Regex (peft full-matches it) selecting the given linears inside the language model only."""
    names = "|".join(sorted(set(target_modules)))
    return rf".*language_model\..*\.({names})"


def build_lora_config(token_ids: list[int], settings: LoraSettings, *, projector: str, tied: bool) -> LoraConfig:
    """The peft config: LoRA on the language model, the new rows (one matrix when the head is tied), the projector."""
    matrices = ["embed_tokens"] if tied else ["embed_tokens", "lm_head"]
    modules_to_save = [projector]
    trainable_tokens = None
    if settings.new_token_mode == "trainable_token_indices":
        trainable_tokens = {name: token_ids for name in matrices}
    else:
        modules_to_save += matrices
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


def wrap_with_lora(model: torch.nn.Module, config: LoraConfig, *, is_vision: Callable[[str], bool]) -> PeftModel:
    """``model`` as a trainable PeftModel; fails when a parameter ``is_vision`` names would train."""
    with quiet_peft():
        peft_model = get_peft_model(model, config)
    upcast_trainable_parameters(peft_model)
    for name, param in peft_model.named_parameters():
        if is_vision(name) and param.requires_grad:
            raise RuntimeError(f"vision tower parameter {name} would train; the LoRA targets are wrong")
    return peft_model


def upcast_trainable_parameters(model: torch.nn.Module) -> int:
    """Keep every trainable tensor in fp32 when the base model is loaded in bf16/fp16.

    Updates of size lr x O(1) (e.g. 2e-5 for the projector) are below bf16's resolution
    for weights of size ~1e-2 and would be rounded away; the frozen base stays in half
    precision and autocast runs the matmuls in bf16. Returns how many tensors were cast.
    """
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()
            cast += 1
    return cast


def param_groups(model: torch.nn.Module, settings: LoraSettings, *, projector: str) -> list[dict[str, Any]]:
    """Optimizer groups over trainable params: names containing ``projector`` at ``projector_lr``, the rest at ``lr``.

    Order is by parameter name, so an optimizer state saved in a checkpoint maps back
    onto the same parameters when training resumes.
    """
    projector_params, rest = [], []
    for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if param.requires_grad:
            (projector_params if projector in name else rest).append(param)
    groups = [{"params": rest, "lr": settings.lr, "weight_decay": settings.weight_decay, "name": "lora_and_tokens"}]
    if projector_params:
        groups.append({"params": projector_params, "lr": settings.projector_lr, "weight_decay": settings.weight_decay,
                       "name": "projector"})
    return groups


def trainable_summary(model: torch.nn.Module, *, projector: str) -> dict[str, int]:
    """Counts of trainable parameters by part (for logs and tests); ``projector``: a substring
    of the projector's parameter names."""
    parts = {"lora": 0, "tokens": 0, "projector": 0, "other": 0}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if "lora_" in name:
            parts["lora"] += param.numel()
        elif projector in name:
            parts["projector"] += param.numel()
        elif "embed_tokens" in name or "lm_head" in name or "trainable_tokens" in name:
            parts["tokens"] += param.numel()
        else:
            parts["other"] += param.numel()
    return parts
