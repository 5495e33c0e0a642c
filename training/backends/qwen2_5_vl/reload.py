"""The reload of a fine-tuned Qwen2.5-VL adapter (no trainer imported); Qwen2-VL's reload is the same
steps with its own loader and tokens (:func:`reload_qwen_adapter`)."""

from __future__ import annotations

import os

import torch

from training.finetune.adapter_folder import attach_adapter, read_record
from training.finetune.tokens import TokenMap

from training.backends.qwen2_5_vl.model import add_tokens, load_processor, load_qwen2_5_vl

FAMILY = "qwen2_5_vl"


def reload_qwen_adapter(load, add_family_tokens, adapter_dir: str | os.PathLike, base_checkpoint: str | None = None, *,
                        dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Base model by ``load`` -> same tokens by ``add_family_tokens`` (ids checked against token_map.json)
    -> the saved adapter."""
    meta, saved_config = read_record(adapter_dir)
    model, _ = load(base_checkpoint or meta["base_checkpoint"], dtype=dtype, seed=saved_config.seed)
    processor = load_processor(str(adapter_dir))
    token_map = add_family_tokens(model, processor, saved_config)
    peft_model = attach_adapter(model, adapter_dir, meta, saved_ids=TokenMap.load(adapter_dir).ids,
                                new_ids=token_map.ids, device=device)
    return peft_model, processor


def reload_adapter(adapter_dir: str | os.PathLike, base_checkpoint: str | None = None, *,
                   dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Base Qwen2.5-VL -> same perception tokens (ids checked against token_map.json) -> the saved adapter."""
    return reload_qwen_adapter(load_qwen2_5_vl, add_tokens, adapter_dir, base_checkpoint, dtype=dtype, device=device)
