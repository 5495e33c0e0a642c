"""The Qwen2.5-VL fine-tune recipe, on the shared machinery of training/finetune.

Same contract as the LLaVA recipe (ordered curriculum, resumable checkpoints, depth losses,
adapter + processor + token map + ``finetune_config.json``; the reload is in reload.py). What
is Qwen's: the model and processor, the encoding (chat template, dynamic resolution, packed
image patches), the LoRA targets (tied or untied head) and the merger as the projector.
Qwen2-VL runs the same recipe with its own loader (:func:`run_qwen_finetune`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import torch

from training.finetune.config import FinetuneConfig, FinetuneResult
from training.finetune.session import start, train_and_save, wrap_for_training
from training.segmentation.training import segmentation_for_run

from training.backends.qwen2_5_vl.data import QwenCollator, QwenConversationDataset
from training.backends.qwen2_5_vl.lora import apply_lora, param_groups, trainable_summary
from training.backends.qwen2_5_vl.model import add_tokens, load_qwen2_5_vl
from training.backends.qwen2_5_vl.reload import FAMILY


def run_qwen_finetune(
    config: FinetuneConfig,
    records: Sequence[dict[str, Any]] | str | os.PathLike,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    load: Callable,
    add_family_tokens: Callable,
    family: str,
    title: str,
    log: Callable[[str], None] = print,
    metrics_callback: Callable[[dict[str, Any]], None] | None = None,
    codebook: torch.Tensor | None = None,
    decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> FinetuneResult:
    """Fine-tune ``config.checkpoint`` (loaded by ``load``) on ``records``, in order."""
    session = start(config, log)
    model, processor = load(config.checkpoint, dtype=session.dtype, device=session.device, seed=config.seed)
    token_map = add_family_tokens(model, processor, config)
    peft_model = wrap_for_training(session, config, model, token_map, apply_lora, trainable_summary)
    dataset = QwenConversationDataset(records, image_dir, processor, max_length=config.max_length)
    dataset, collator, segmentation = segmentation_for_run(
        config, model, token_map, dataset, QwenCollator(pad_token_id=processor.tokenizer.pad_token_id), session.device)
    return train_and_save(
        session, config, model=model, peft_model=peft_model, processor=processor, token_map=token_map,
        dataset=dataset, collator=collator, segmentation=segmentation,
        param_groups=param_groups, out_dir=out_dir, family=family, title=f"{title} {config.checkpoint}",
        metrics_callback=metrics_callback, codebook=codebook, decoder=decoder,
    )


def run_finetune(config: FinetuneConfig, records, image_dir, out_dir, **kwargs) -> FinetuneResult:
    """Fine-tune ``config.checkpoint`` (a Qwen2.5-VL preset or checkpoint) on ``records``, in order."""
    return run_qwen_finetune(config, records, image_dir, out_dir, load=load_qwen2_5_vl, add_family_tokens=add_tokens,
                             family=FAMILY, title="Qwen2.5-VL", **kwargs)
