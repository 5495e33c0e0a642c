"""The reload of a fine-tuned Qwen2-VL adapter (no trainer imported); a VPT run's re-encoder reloads
beside it (:func:`training.vpt.saving.load_reencoder`)."""

from __future__ import annotations

import os

import torch

from training.backends.qwen2_5_vl.reload import reload_qwen_adapter
from training.backends.qwen2_vl.model import add_tokens, load_qwen2_vl

FAMILY = "qwen2_vl"


def reload_adapter(adapter_dir: str | os.PathLike, base_checkpoint: str | None = None, *,
                   dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Base Qwen2-VL -> the run's tokens (VPT's or Qwen's; ids checked) -> the saved adapter."""
    return reload_qwen_adapter(load_qwen2_vl, add_tokens, adapter_dir, base_checkpoint, dtype=dtype, device=device)
