"""The steps of a fine-tune every family runs the same way: where it runs, and the train/resume/save tail.

A family's recipe (``run_finetune`` in its folder) is: ``session = start(config, log)``, load
its model on ``session.device`` in ``session.dtype``, add the perception tokens, wrap with
LoRA (``wrap_for_training``), build its dataset and collator, then ``train_and_save``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from transformers import set_seed
from transformers.trainer_callback import PrinterCallback

from perception_tokens import token_kinds
from perception_tokens.vocab import DEPTH_START
from training.finetune.adapter_folder import (
    ADAPTER_DIRNAME,
    CHECKPOINT_DIRNAME,
    LOSS_CURVE_FILE,
    last_complete_checkpoint,
    save_adapter,
)
from training.finetune.config import FinetuneConfig, FinetuneResult
from training.finetune.lora import LoraSettings
from training.finetune.plots import plot_loss_curve
from training.finetune.trainer import (SEG_LOSS_KEY, CurriculumTrainer, Log, MetricsCallback, MetricsForwarder, ParamGroups,
                                       training_arguments)
from training.llava.losses import DepthTokenIds


@dataclass(frozen=True)
class Session:
    """Where this process trains: GPU or CPU, its rank's device, the dtype, and a rank-0-only logger."""

    on_gpu: bool
    device: str
    dtype: torch.dtype
    say: Log


def start(config: FinetuneConfig, log: Log) -> Session:
    """Seed, pick the device of this rank (each rank builds its model straight on its own GPU) and the dtype."""
    on_gpu = torch.cuda.is_available()
    rank0 = int(os.environ.get("RANK", "0")) == 0
    say: Log = log if rank0 else (lambda _msg: None)
    if not on_gpu and (config.bf16 or config.tf32 or config.gradient_checkpointing):
        say("no GPU: bf16, tf32 and gradient checkpointing are off")
    if config.segmentation.enabled:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # the head is not inside the DDP-wrapped model, so its gradients would not be all-reduced
            raise ValueError("finetune.segmentation trains on one process only (WORLD_SIZE > 1 given)")
        token_kinds.enable("seg")  # [SEG] joins the vocabulary of this run (and of its adapter)
    set_seed(config.seed)
    dtype = torch.bfloat16 if (on_gpu and config.bf16) else torch.float32
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if on_gpu else "cpu"
    return Session(on_gpu=on_gpu, device=device, dtype=dtype, say=say)


def wrap_for_training(session: Session, config: FinetuneConfig, model, token_map, apply_lora, trainable_summary):
    """The family's LoRA wrap, seeded (LoRA init draws from the global RNG), with caching off."""
    model.config.use_cache = False
    set_seed(config.seed)
    peft_model = apply_lora(model, token_map, config.lora)
    if session.on_gpu and config.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    session.say(f"trainable parameters: {trainable_summary(peft_model)}")
    return peft_model


def train_and_save(
    session: Session,
    config: FinetuneConfig,
    *,
    model,
    peft_model,
    processor,
    token_map,
    dataset,
    collator,
    param_groups: ParamGroups,
    out_dir: str | os.PathLike,
    family: str | None,
    title: str,
    metrics_callback: MetricsCallback | None = None,
    codebook: torch.Tensor | None = None,
    decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    segmentation=None,
) -> FinetuneResult:
    """Train in curriculum order (resuming from the last complete checkpoint), save the adapter, plot, report.

    ``family`` is recorded in the adapter's ``finetune_config.json`` (None: LLaVA, the first family).
    ``segmentation`` (:class:`training.segmentation.training.SegmentationTraining`) adds the [SEG]
    head's loss; its weights are saved in every checkpoint and beside the adapter.
    """
    out_dir = Path(out_dir)
    say = session.say
    checkpoint_dir = out_dir / CHECKPOINT_DIRNAME
    args = training_arguments(config, checkpoint_dir, session.on_gpu)
    forwarder = MetricsForwarder(say, metrics_callback)
    trainer = CurriculumTrainer(
        model=peft_model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        callbacks=[forwarder],
        lora_settings=LoraSettings(**{**config.lora.to_dict(), "projector_lr": config.projector_learning_rate}),
        param_groups=param_groups,
        depth_ids=DepthTokenIds.from_token_map(token_map) if DEPTH_START in token_map.ids else None,
        depth_weights=config.depth_losses,
        codebook=codebook,
        decoder=decoder,
        segmentation=segmentation,
    )
    trainer.remove_callback(PrinterCallback)  # MetricsForwarder reports instead (rank 0 only)
    last = last_complete_checkpoint(checkpoint_dir) if (config.resume and checkpoint_dir.is_dir()) else None
    if last:
        say(f"resuming from {last}")
        if segmentation is not None:
            segmentation.load_checkpoint(last)
    say(f"training {title} on {len(dataset)} records, {'GPU' if session.on_gpu else 'CPU'}, world size {args.world_size}")
    trainer.train(resume_from_checkpoint=last)

    history = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history if "loss" in h]
    seg_history = [(int(h["step"]), float(h[SEG_LOSS_KEY])) for h in trainer.state.log_history if SEG_LOSS_KEY in h]
    adapter_dir = out_dir / ADAPTER_DIRNAME
    curve = out_dir / LOSS_CURVE_FILE
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        rows = int(model.get_input_embeddings().weight.shape[0])
        save_adapter(peft_model, processor, token_map, config, adapter_dir, embedding_rows=rows, family=family,
                     segmentation_head=segmentation.head if segmentation is not None else None)
        plot_loss_curve(history, curve, title=f"LoRA fine-tune ({title})")
    trainer.accelerator.wait_for_everyone()
    seconds = forwarder.session_seconds
    step_times = forwarder.step_times[1:] or forwarder.step_times  # the first includes warm-up
    result = FinetuneResult(
        adapter_dir=adapter_dir,
        final_loss=history[-1][1] if history else float("nan"),
        loss_history=history,
        tokens_per_s=forwarder.session_tokens / seconds if seconds > 0 else float("nan"),
        steps=int(trainer.state.global_step),
        step_time_s=sum(step_times) / len(step_times) if step_times else float("nan"),
        loss_curve_png=curve,
        token_map=token_map,
        seg_loss_history=seg_history,
    )
    say(f"done: {result.steps} steps, final loss {result.final_loss:.4f}, {result.tokens_per_s:.0f} tok/s, "
        f"adapter {adapter_dir}")
    return result


