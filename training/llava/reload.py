"""Reload a fine-tuned LLaVA from its adapter folder (what evaluation needs; no trainer imported)."""

from __future__ import annotations

import os

import torch
from transformers import AutoProcessor

from training.finetune.adapter_folder import attach_adapter, read_record
from training.finetune.tokens import TokenMap, add_tokens
from training.llava.model import load_llava


def reload_adapter(
    adapter_dir: str | os.PathLike,
    base_checkpoint: str | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
):
    """Base model -> same perception tokens -> same embedding size -> the saved adapter.

    ``base_checkpoint`` defaults to the one recorded in ``finetune_config.json``. The
    processor (with the perception tokens) is read from ``adapter_dir``; the token ids
    it gives must equal ``token_map.json``'s.
    """
    meta, saved_config = read_record(adapter_dir)
    model, _ = load_llava(base_checkpoint or meta["base_checkpoint"], dtype=dtype, device="cpu", seed=saved_config.seed)
    processor = AutoProcessor.from_pretrained(str(adapter_dir))
    saved = TokenMap.load(adapter_dir)
    token_map = add_tokens(model, processor, saved_config, tokens=saved.tokens())
    peft_model = attach_adapter(model, adapter_dir, meta, saved_ids=saved.ids, new_ids=token_map.ids, device=device)
    return peft_model, processor
