"""Qwen2-VL (VPT's base model, arXiv 2502.17425 Sec. 4): loaded beside Qwen2.5-VL, through the same code.

Qwen2-VL and Qwen2.5-VL share the processor (``Qwen2VLImageProcessor``: 14-px patches, 2x2 merge,
dynamic resolution), the special tokens, the image part of the chat template and M-RoPE; the
model class differs (Qwen2-VL's ViT has no window attention and its merger no RMSNorm). The VPT
sequence code (:mod:`training.vpt.sequence`) uses only what both expose: ``get_image_features``,
``get_rope_index`` and ``config.image_token_id``. The family's tokens: Qwen's depth tokens for an
ordinary run, VPT's region grid and control token for a ``finetune.vpt`` run.
"""

from __future__ import annotations

import torch
from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

from training.backends.qwen2_5_vl.model import (
    ENDOFTEXT,
    TINY,
    _ids,
    add_vpt_tokens,
    build_tiny_processor,
    load_processor,
    tiny_qwen2_text_config,
)
from training.backends.qwen2_5_vl.model import add_tokens as add_qwen_tokens

PRESETS = (TINY,)
from training.llava.model import TINY_HEAD_STD


def tiny_qwen2_vl_config(processor, *, text_layers: int = 2) -> Qwen2VLConfig:
    """Tiny Qwen2-VL: ViT (embed 32, 2 blocks) + Qwen2 decoder (hidden 64, 2 layers, GQA), tied head like the 2B.
    ``text_layers``: a one-layer decoder lets a test see the attention mask's effect on the logits directly."""
    tokenizer = processor.tokenizer
    vision = dict(depth=2, embed_dim=32, hidden_size=64, mlp_ratio=2, num_heads=2, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2)
    text = {**tiny_qwen2_text_config(tokenizer), "num_hidden_layers": text_layers}
    cfg = Qwen2VLConfig(vision_config=vision, text_config=text, tie_word_embeddings=True,
                        **_ids(tokenizer))
    cfg.pad_token_id = tokenizer.pad_token_id
    return cfg


def load_qwen2_vl(checkpoint: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                  seed: int = 0):
    """``(model, processor)``: ``"tiny"`` (built from config, deterministic under ``seed``) or a checkpoint
    (``Qwen/Qwen2-VL-2B-Instruct``, a local dir) by ``from_pretrained``."""
    if checkpoint == TINY:
        processor = build_tiny_processor()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Qwen2VLForConditionalGeneration(tiny_qwen2_vl_config(processor))
            with torch.no_grad():
                model.lm_head.weight.normal_(0.0, TINY_HEAD_STD)
        model = model.to(device=device, dtype=dtype)
    else:
        processor = load_processor(checkpoint)
        model = Qwen2VLForConditionalGeneration.from_pretrained(checkpoint, dtype=dtype).to(device)
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = ENDOFTEXT
    return model, processor


def add_tokens(model, processor, config):
    """VPT's tokens (``config.vpt.grid``) for a VPT run, else Qwen's perception tokens (as Qwen2.5-VL)."""
    vpt = getattr(config, "vpt", None)
    if vpt is not None and vpt.enabled:
        return add_vpt_tokens(model, processor, config, vpt.grid)
    return add_qwen_tokens(model, processor, config)
