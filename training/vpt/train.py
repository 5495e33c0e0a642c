"""VPT's fine-tune (arXiv 2502.17425 Sec. 3.2, 4.1): teacher forcing through the sequence builder, mask
modeling, and two stages in one run.

Every record is teacher-forced by :func:`training.vpt.sequence.teacher_forced`: a closed region inserts
the crop of the original image (encoded by the model's own vision tower), ``<REENCODE_CONTROL>``
inserts the re-encoder's output keyed by the control token's hidden state (a forward over the prefix,
with gradient), exactly as generation does. Labels (:func:`training.vpt.sequence.labels`): the answer,
region tokens included, never the control token (Sec. 3.2: no LM loss on it), never an inserted span.
A seeded share of the re-encoding samples (``vpt.mask_modeling``) trains under the 4D mask of
:mod:`training.vpt.masking`.

Stage 1 ("align", the records with ``vpt_stage`` 1): only the projector and the new token rows train.
Stage 2 ("finetune", every other record): LoRA, the merger, the rows and the projector. Records keep
their curriculum order (no shuffle). A plain loop rather than the HF Trainer: each step runs an
extra forward per control token and the trainable set changes between stages. It does not resume a
killed run (the run starts over); the adapter is saved atomically at the end, the re-encoder beside it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from transformers import get_scheduler

from training.backends.qwen2_5_vl.lora import apply_lora, param_groups, trainable_summary
from training.finetune.adapter_folder import ADAPTER_DIRNAME, LOSS_CURVE_FILE, save_adapter
from training.finetune.config import FinetuneConfig, FinetuneResult
from training.finetune.lora import LoraSettings
from training.finetune.plots import plot_loss_curve
from training.finetune.session import start, wrap_for_training
from training.llava.data import load_records, open_image, safe_image_path, validate_record
from training.vpt.masking import attention_mask_4d, control_index, is_masked
from training.vpt.projector import ReEncoder, load_dinov2
from training.vpt.saving import save_reencoder
from training.vpt.sequence import Inserter, start_sequence, teacher_forced, training_batch

STAGES = ("align", "finetune")
IMAGE_PREFIX = "<image>\n"


def stage_of(record: dict[str, Any]) -> str:
    """``align`` for a record with ``vpt_stage`` 1, ``finetune`` otherwise (a record without the key: stage 2)."""
    return STAGES[0] if int(record.get("vpt_stage") or 2) == 1 else STAGES[1]


def set_trainable(model: torch.nn.Module, reencoder: ReEncoder, trained: set[str], stage: str) -> None:
    """``trained``: the names LoRA wrapping made trainable. Stage 1 keeps only the token rows of them;
    stage 2 all of them. The projector trains in both, DINOv2 in neither."""
    for name, param in model.named_parameters():
        is_row = "trainable_tokens" in name or ("modules_to_save" in name and ("embed_tokens" in name or "lm_head" in name))
        param.requires_grad_(name in trained and (stage == STAGES[1] or is_row))
    reencoder.dino.requires_grad_(False)
    reencoder.projector.requires_grad_(True)


def optimizer_for(model, reencoder: ReEncoder, config: FinetuneConfig, stage: str) -> torch.optim.Optimizer:
    if stage == STAGES[0]:
        lr = config.vpt.align_lr or config.learning_rate
        params = [p for p in model.parameters() if p.requires_grad] + list(reencoder.projector.parameters())
        groups = [{"params": params, "lr": lr, "weight_decay": config.lora.weight_decay, "name": "align"}]
    else:
        settings = LoraSettings(**{**config.lora.to_dict(), "lr": config.learning_rate,
                                   "projector_lr": config.projector_learning_rate})
        groups = param_groups(model, settings) + [{"params": list(reencoder.projector.parameters()),
                                                   "lr": config.learning_rate, "weight_decay": config.lora.weight_decay,
                                                   "name": "vpt_projector"}]
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)


class VptBatches:
    """Records -> teacher-forced sequences and the model inputs of one step (4D mask where masked)."""

    def __init__(self, inserter: Inserter, image_dir, config: FinetuneConfig):
        self.inserter, self.image_dir, self.config = inserter, Path(image_dir), config
        self.im_end = inserter.tokenizer.eos_token_id

    def sequence(self, record: dict[str, Any]):
        question, answer = record["conversations"][0]["value"], record["conversations"][1]["value"]
        question = question[len(IMAGE_PREFIX):] if question.startswith(IMAGE_PREFIX) else question
        image = open_image(safe_image_path(self.image_dir, record["image"]))
        processor = self.inserter.processor
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        answer_ids = self.inserter.tokenizer(answer, add_special_tokens=False)["input_ids"] + [self.im_end]
        return teacher_forced(self.inserter, start_sequence(processor, prompt, image), answer_ids)

    def batch(self, records: list[dict[str, Any]]) -> tuple[dict, int]:
        """The inputs of ``model(**batch)`` for ``records`` and how many of them are masked."""
        sequences = [self.sequence(r) for r in records]
        batch = training_batch(self.inserter, sequences)
        controls = []
        for record, seq in zip(records, sequences):
            control = control_index(seq.ids, self.inserter.control, seq.prompt_length)
            masked = control is not None and is_masked(str(record.get("id", "")), self.config.seed,
                                                       self.config.vpt.mask_modeling)
            controls.append(control if masked else None)
        if any(c is not None for c in controls):
            width = batch["attention_mask"].shape[1]
            batch["attention_mask"] = attention_mask_4d([len(s.ids) for s in sequences], width, controls,
                                                        dtype=batch["inputs_embeds"].dtype,
                                                        device=batch["inputs_embeds"].device)
        return batch, sum(c is not None for c in controls)


def run_stage(stage: str, records: list[dict], batches: VptBatches, model, reencoder, config: FinetuneConfig, *,
              epochs: float, max_steps: int, trained: set[str], step0: int, say, metrics_callback) -> list[tuple[int, float]]:
    """One stage over ``records`` in order; returns its (global step, loss) history."""
    if not records or epochs <= 0:
        return []
    set_trainable(model, reencoder, trained, stage)
    per_step = config.per_device_batch_size * config.grad_accum
    steps = math.ceil(len(records) * epochs / per_step)
    steps = min(steps, max_steps) if max_steps > 0 else steps
    optimizer = optimizer_for(model, reencoder, config, stage)
    scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=int(config.warmup_ratio * steps),
                              num_training_steps=steps)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train(), reencoder.train()
    reencoder.dino.eval()
    history, cursor = [], 0
    for step in range(1, steps + 1):
        started, total, masked, tokens = time.perf_counter(), 0.0, 0, 0
        for _ in range(config.grad_accum):
            chunk = [records[(cursor + i) % len(records)] for i in range(config.per_device_batch_size)]
            cursor += len(chunk)
            batch, n_masked = batches.batch(chunk)
            loss = model(**batch).loss / config.grad_accum
            loss.backward()
            total, masked = total + float(loss.detach()), masked + n_masked
            tokens += int((batch["labels"] != -100).sum())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
        optimizer.step(), scheduler.step(), optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - started
        history.append((step0 + step, total))
        if step == 1 or step % config.logging_steps == 0 or step == steps:
            record = {"step": step0 + step, "stage": stage, "loss": total, "learning_rate": scheduler.get_last_lr()[0],
                      "grad_norm": grad_norm, "masked_samples": masked, "tokens_per_s": tokens / seconds,
                      "step_time_s": seconds}
            say(f"{stage} step {step}/{steps} loss {total:.4f} ({masked} masked)")
            if metrics_callback is not None:
                metrics_callback(record)
    return history


def run_vpt_finetune(config: FinetuneConfig, records, image_dir, out_dir, *, load: Callable, add_family_tokens: Callable,
                     family: str, log: Callable[[str], None] = print,
                     metrics_callback: Callable[[dict[str, Any]], None] | None = None) -> FinetuneResult:
    """Stage 1 then stage 2 on ``records`` (a list or a LLaVA JSON path); the adapter and the re-encoder
    saved under ``out_dir/adapter``."""
    session = start(config, log)
    if isinstance(records, (str, Path)):
        records = load_records(records)
    for i, record in enumerate(records):
        validate_record(record, f"record {i}")
    model, processor = load(config.checkpoint, dtype=session.dtype, device=session.device, seed=config.seed)
    token_map = add_family_tokens(model, processor, config)
    peft_model = wrap_for_training(session, config, model, token_map, apply_lora, trainable_summary)
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    torch.manual_seed(config.seed)
    dino, dino_processor = load_dinov2(config.vpt.reencoder)
    reencoder = ReEncoder(dino, dino_processor, model.config.text_config.hidden_size, config.vpt.projector_heads)
    reencoder = reencoder.to(device=session.device)
    reencoder.dino.to(dtype=session.dtype)  # frozen: the model's dtype; the projector trains in float32
    # the base model carries the injected LoRA layers: the sequence code calls its own methods
    inserter = Inserter(model, processor, reencoder, max_actions=config.vpt.max_actions)
    batches = VptBatches(inserter, image_dir, config)
    by_stage = {s: [r for r in records if stage_of(r) == s] for s in STAGES}
    session.say(f"VPT {family} {config.checkpoint}: {len(by_stage['align'])} align, {len(by_stage['finetune'])} "
                f"fine-tune records, {'GPU' if session.on_gpu else 'CPU'}")
    started = time.perf_counter()
    align = run_stage("align", by_stage["align"], batches, model, reencoder, config, epochs=config.vpt.align_epochs,
                      max_steps=-1, trained=trained, step0=0, say=session.say, metrics_callback=metrics_callback)
    tune = run_stage("finetune", by_stage["finetune"], batches, model, reencoder, config, epochs=config.epochs,
                     max_steps=config.max_steps, trained=trained, step0=len(align), say=session.say,
                     metrics_callback=metrics_callback)
    seconds = time.perf_counter() - started
    history = align + tune
    adapter_dir, curve = Path(out_dir) / ADAPTER_DIRNAME, Path(out_dir) / LOSS_CURVE_FILE
    save_adapter(peft_model, processor, token_map, config, adapter_dir,
                 embedding_rows=int(model.get_input_embeddings().weight.shape[0]), family=family,
                 beside=[lambda folder: save_reencoder(reencoder, folder, config.vpt)],
                 vocabulary=token_map.vocabulary_hash)
    plot_loss_curve(history, curve, title=f"VPT fine-tune ({family} {config.checkpoint}): align, then fine-tune")
    return FinetuneResult(adapter_dir=adapter_dir, final_loss=history[-1][1] if history else float("nan"),
                          loss_history=history, tokens_per_s=float("nan"), steps=len(history),
                          step_time_s=seconds / len(history) if history else float("nan"), loss_curve_png=curve,
                          token_map=token_map, stages={"align": align, "finetune": tune})
