"""The interface every model family implements (one subpackage of training/backends each)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Backend:
    """What the pipeline needs from a model family; every callable is the family's own.

    - ``load(checkpoint, *, dtype, device, seed) -> (model, processor)``: a preset
      (``presets``) or a local dir / hub id;
    - ``add_tokens(model, processor, finetune_config) -> TokenMap``: the perception tokens,
      ids from the tokenizer, new rows initialised (padded rows included);
    - ``reload_adapter(adapter_dir, base_checkpoint=None, *, dtype, device) -> (model, processor)``;
    - ``recipe``: the module whose ``run_finetune(config, records, image_dir, out_dir, *, log,
      metrics_callback) -> FinetuneResult`` is the ordered, resumable curriculum LoRA fine-tune
      (adapter saved under ``out_dir/adapter``). It is imported only to train, so reloading an
      adapter for evaluation does not import the trainer.

    Perceptio's segmentation head is optional and family-independent: a recipe passes its dataset
    and collator through ``training.segmentation.training.segmentation_for_run`` (a no-op unless
    ``config.segmentation.enabled``) and hands the result to ``train_and_save``; the head is
    reloaded beside any family's adapter by ``training.backends.reload_segmentation_head``.

    ``model_types`` are the ``config.json`` ``model_type`` values the family serves, used to
    detect the family of a checkpoint.
    """

    family: str
    model_types: tuple[str, ...]
    presets: tuple[str, ...]
    load: Callable[..., tuple[Any, Any]]
    add_tokens: Callable[..., Any]
    reload_adapter: Callable[..., tuple[Any, Any]]
    recipe: str

    def run_finetune(self, *args, **kwargs):
        """The family's fine-tune (see ``recipe``)."""
        return importlib.import_module(self.recipe).run_finetune(*args, **kwargs)
