"""Qwen2-VL (``Qwen2VLForConditionalGeneration``, VPT's base model): the Qwen2.5-VL backend's code with
Qwen2-VL's model class; a ``finetune.vpt`` run trains VPT's tokens, stages and projector instead."""

from __future__ import annotations

from training.backends.base import Backend
from training.backends.qwen2_vl.model import PRESETS, add_tokens, load_qwen2_vl
from training.backends.qwen2_vl.reload import FAMILY, reload_adapter

BACKEND = Backend(
    family=FAMILY,
    model_types=("qwen2_vl",),
    presets=PRESETS,
    load=load_qwen2_vl,
    add_tokens=add_tokens,
    reload_adapter=reload_adapter,
    recipe="training.backends.qwen2_vl.train",
)
