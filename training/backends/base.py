"""The interface every model family implements (one subpackage of training/backends each)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Backend:
    """What the pipeline needs from a model family; every callable is the family's own.

    - ``load(checkpoint, *, dtype, device, seed) -> (model, processor)``: a preset
      (``presets``) or a local dir / hub id;
    - ``add_tokens(model, processor, finetune_config) -> TokenMap``: the perception tokens,
      ids from the tokenizer, new rows initialised (padded rows included);
    - ``run_finetune(config, records, image_dir, out_dir, *, log, metrics_callback) -> FinetuneResult``:
      the ordered, resumable curriculum LoRA fine-tune, adapter saved under ``out_dir/adapter``;
    - ``reload_adapter(adapter_dir, base_checkpoint=None, *, dtype, device) -> (model, processor)``.

    ``model_types`` are the ``config.json`` ``model_type`` values the family serves, used to
    detect the family of a checkpoint.
    """

    family: str
    model_types: tuple[str, ...]
    presets: tuple[str, ...]
    load: Callable[..., tuple[Any, Any]]
    add_tokens: Callable[..., Any]
    run_finetune: Callable[..., Any]
    reload_adapter: Callable[..., tuple[Any, Any]]
