"""The LLaVA-1.5 fine-tune recipe: setup (model, tokens, LoRA, data), then the shared train/save tail.

``run_finetune`` loads the base LLaVA, adds the perception tokens (all, or only the
skills the records use with ``vocabulary="per_skill"``), wraps it with LoRA and trains in
curriculum order with training/finetune's trainer: resumable from the last checkpoint in
``out_dir``, optional depth losses, DDP under ``torchrun``. Rank 0 writes the adapter with
the processor, ``token_map.json`` and ``finetune_config.json`` beside it, and a loss curve.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import torch

from perception_tokens.llava_conversation import chat_template
from perception_tokens.vocab import skill_tokens, skills_in_text
from training.finetune.config import FinetuneConfig, FinetuneResult
from training.finetune.session import start, train_and_save, wrap_for_training
from training.finetune.trainer import Log, MetricsCallback
from training.llava.data import ROLE_OF, ConversationDataset, LlavaCollator, load_records
from training.llava.lora import apply_lora, param_groups, trainable_summary
from training.finetune.tokens import add_tokens
from training.llava.model import load_llava
from training.segmentation.training import segmentation_for_run


def vocabulary_tokens(config: FinetuneConfig, records) -> tuple[list[str] | None, Any]:
    """The perception tokens to add (None: all) and the records, read once when they must be scanned."""
    if config.vocabulary != "per_skill":
        return None, records
    records = load_records(records) if isinstance(records, (str, os.PathLike)) else list(records)
    answers = (turn["value"] for r in records for turn in r["conversations"] if ROLE_OF.get(turn["from"]) == "assistant")
    return skill_tokens(skills_in_text(answers) or ["depth"]), records


def run_finetune(
    config: FinetuneConfig,
    records: Sequence[dict[str, Any]] | str | os.PathLike,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    log: Log = print,
    metrics_callback: MetricsCallback | None = None,
    codebook: torch.Tensor | None = None,
    decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> FinetuneResult:
    """Fine-tune ``config.checkpoint`` on ``records`` (in order); the adapter lands in ``out_dir/adapter``.

    ``records`` is a list of LLaVA records or a JSON/JSONL file of them; images are read
    from ``image_dir``. A run interrupted after a checkpoint resumes from the last one in
    ``out_dir/checkpoints`` (same step, same next sample). ``codebook``/``decoder`` are
    needed only for the reconstruction depth loss.
    """
    session = start(config, log)
    model, processor = load_llava(config.checkpoint, dtype=session.dtype, device=session.device, seed=config.seed)
    if config.conversation != "plain":  # saved with the processor, so evaluation renders prompts the same way
        processor.chat_template = chat_template(config.conversation, processor.image_token)
    tokens, records = vocabulary_tokens(config, records)
    token_map = add_tokens(model, processor, config, tokens=tokens)
    peft_model = wrap_for_training(session, config, model, token_map, apply_lora, trainable_summary)
    dataset = ConversationDataset(records, image_dir, processor, max_length=config.max_length, image_size=config.image_size)
    dataset, collator, segmentation = segmentation_for_run(
        config, model, token_map, dataset, LlavaCollator(pad_token_id=processor.tokenizer.pad_token_id), session.device)
    return train_and_save(
        session, config, model=model, peft_model=peft_model, processor=processor, token_map=token_map,
        dataset=dataset, collator=collator, segmentation=segmentation,
        param_groups=param_groups, out_dir=out_dir, family=None, title=config.checkpoint,
        metrics_callback=metrics_callback, codebook=codebook, decoder=decoder,
    )
