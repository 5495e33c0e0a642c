"""LLaVA-1.5 (``LlavaForConditionalGeneration``): the project's first family, implemented in training/llava."""

from __future__ import annotations

from training.backends.base import Backend
from training.finetune.tokens import add_tokens
from training.llava.model import RANDOM_PRESETS, TINY, load_llava
from training.llava.reload import reload_adapter


BACKEND = Backend(
    family="llava",
    model_types=("llava",),
    presets=(TINY, *RANDOM_PRESETS),
    load=load_llava,
    add_tokens=add_tokens,
    reload_adapter=reload_adapter,
    recipe="training.llava.train",
)
