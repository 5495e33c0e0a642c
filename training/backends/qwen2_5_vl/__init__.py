"""Qwen2.5-VL (``Qwen2_5_VLForConditionalGeneration``): Qwen's template, dynamic resolution, tied or untied head."""

from __future__ import annotations

from training.backends.base import Backend
from training.backends.qwen2_5_vl.model import PRESETS, add_tokens, load_qwen2_5_vl
from training.backends.qwen2_5_vl.reload import FAMILY, reload_adapter

BACKEND = Backend(
    family=FAMILY,
    model_types=("qwen2_5_vl",),
    presets=PRESETS,
    load=load_qwen2_5_vl,
    add_tokens=add_tokens,
    reload_adapter=reload_adapter,
    recipe="training.backends.qwen2_5_vl.train",
)
