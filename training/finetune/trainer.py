"""The HF Trainer of the curriculum fine-tune: data order kept, per-part learning rates, depth losses, metrics.

Under ``torchrun`` the Trainer runs DDP (gloo on CPU, nccl on GPU); only rank 0 reports.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback, TrainingArguments

from training.finetune.config import FinetuneConfig
from training.finetune.lora import LoraSettings
from training.llava.losses import DepthLossWeights, DepthTokenIds, depth_losses

Log = Callable[[str], None]
MetricsCallback = Callable[[dict[str, Any]], None]
ParamGroups = Callable[[torch.nn.Module, LoraSettings], list[dict[str, Any]]]
# the logged key of the segmentation head's total loss (``_add_aux("seg", ...)``: seg_<name>_loss)
SEG_LOSS_KEY = "seg_total_loss"


class CurriculumTrainer(Trainer):
    """Trainer that keeps data order, uses the family's per-part learning rates and adds depth losses."""

    def __init__(
        self,
        *args,
        lora_settings: LoraSettings,
        param_groups: ParamGroups,
        depth_ids: DepthTokenIds | None = None,
        depth_weights: DepthLossWeights | None = None,
        codebook: torch.Tensor | None = None,
        decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
        segmentation=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.lora_settings = lora_settings
        self.param_groups = param_groups
        self.depth_ids = depth_ids
        self.depth_weights = depth_weights or DepthLossWeights()
        self.codebook = codebook
        self.decoder = decoder
        self.segmentation = segmentation  # training.segmentation.training.SegmentationTraining or None
        if segmentation is not None:
            self.add_callback(_SaveSegmentationHead(segmentation))
        self._aux_sums: dict[str, float] = {}
        self._aux_count = 0

    def _get_train_sampler(self, train_dataset=None) -> SequentialSampler:
        # The curriculum is ordered on purpose: never shuffle. Under DDP, Accelerate shards
        # consecutive batches across ranks, so the global order is kept; on resume the
        # Trainer skips the batches already seen, so training continues at the same sample.
        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            settings = LoraSettings(**{**self.lora_settings.to_dict(), "lr": self.args.learning_rate})
            groups = self.param_groups(self.model if model is None else model, settings)
            if self.segmentation is not None:
                seg = self.segmentation
                groups.append({"params": seg.head.trainable_parameters(), "lr": seg.settings.lr or self.args.learning_rate,
                               "weight_decay": settings.weight_decay, "name": "segmentation_head"})
            self.optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate, betas=(0.9, 0.999), eps=1e-8)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        seg_inputs = self.segmentation.pop_inputs(inputs) if self.segmentation is not None else None
        if not self.depth_weights.any() and seg_inputs is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        if seg_inputs is not None:
            inputs["output_hidden_states"] = True
        loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        aux_total = loss.new_zeros(())
        if self.depth_weights.any():
            aux = depth_losses(outputs.logits, labels, self.depth_ids, self.depth_weights, self.codebook, self.decoder)
            self._add_aux("depth", aux)
            aux_total = aux_total + aux["total"]
        if seg_inputs is not None:
            self.segmentation.head.train(model.training)
            seg = self.segmentation.loss(outputs.hidden_states[-1], inputs["input_ids"], seg_inputs)
            if seg is not None:
                self._add_aux("seg", seg)
                aux_total = aux_total + seg["total"]
        self._aux_count += 1
        # Match the LM loss's gradient-accumulation scaling: when it is already normalised over
        # the accumulated batch the Trainer will not divide, so divide the per-batch aux mean here.
        scaled = (
            self.loss_is_scaled_for_ga
            if self.loss_is_scaled_for_ga is not None
            else (self.model_accepts_loss_kwargs and num_items_in_batch is not None)
        )
        total_aux = aux_total / self.current_gradient_accumulation_steps if scaled else aux_total
        loss = loss + total_aux
        return (loss, outputs) if return_outputs else loss

    def _add_aux(self, part: str, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            key = f"{part}_{name}_loss"
            self._aux_sums[key] = self._aux_sums.get(key, 0.0) + float(value.detach())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._aux_count and "loss" in logs:
            # a mean over the logged steps (the seg loss: over the steps, counting 0 where no row had a mask)
            for key, total in self._aux_sums.items():
                logs[key] = round(total / self._aux_count, 6)
            self._aux_sums, self._aux_count = {}, 0
        super().log(logs, start_time)


class MetricsForwarder(TrainerCallback):
    """Turns Trainer logs into one dict per log event (loss, lr, throughput) for rank 0."""

    def __init__(self, log: Log, metrics_callback: MetricsCallback | None):
        self.log = log
        self.metrics_callback = metrics_callback
        self._last_time: float | None = None
        self._last_step = 0
        self._last_tokens = 0
        self.session_tokens = 0
        self.session_seconds = 0.0
        self.step_times: list[float] = []
        self._first_tokens: int | None = None
        self._train_start: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time = self._train_start = time.perf_counter()
        self._last_step = state.global_step
        self._last_tokens = self._first_tokens = state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now = time.perf_counter()
        steps = state.global_step - self._last_step
        seconds = now - (self._last_time or now)
        tokens = state.num_input_tokens_seen - self._last_tokens
        record = {
            "step": state.global_step,
            "epoch": round(float(state.epoch or 0.0), 4),
            "loss": float(logs["loss"]),
            "learning_rate": float(logs.get("learning_rate", float("nan"))),
            "grad_norm": float(logs.get("grad_norm", float("nan"))),
            "tokens_per_s": tokens / seconds if seconds > 0 else float("nan"),
            "step_time_s": seconds / steps if steps > 0 else float("nan"),
        }
        record.update({k: float(v) for k, v in logs.items() if k.startswith(("depth_", "seg_"))})
        if steps > 0 and seconds > 0:
            self.step_times.append(seconds / steps)
        self._last_time, self._last_step, self._last_tokens = now, state.global_step, state.num_input_tokens_seen
        self.log(
            f"step {record['step']}/{state.max_steps} loss {record['loss']:.4f} lr {record['learning_rate']:.2e} "
            f"{record['tokens_per_s']:.0f} tok/s {record['step_time_s'] * 1000:.0f} ms/step"
        )
        if self.metrics_callback is not None:
            self.metrics_callback(record)

    def on_train_end(self, args, state, control, **kwargs):
        if self._train_start is not None:
            self.session_seconds = time.perf_counter() - self._train_start
            self.session_tokens = state.num_input_tokens_seen - (self._first_tokens or 0)


class _SaveSegmentationHead(TrainerCallback):
    """Writes the segmentation head into each Trainer checkpoint (the Trainer saves only the peft model)."""

    def __init__(self, segmentation):
        self.segmentation = segmentation

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                self.segmentation.save_checkpoint(folder)


def is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def training_arguments(config: FinetuneConfig, checkpoint_dir: Path, on_gpu: bool) -> TrainingArguments:
    """The Trainer's arguments for ``config``: checkpoints in ``checkpoint_dir``, mixed precision on GPU only."""
    kwargs: dict[str, Any] = dict(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        weight_decay=config.lora.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio in transformers 5
        lr_scheduler_type=config.lr_scheduler,
        max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps > 0 else -1,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=config.dataloader_num_workers,
        dataloader_pin_memory=on_gpu,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=not config.progress_bar,
        ddp_find_unused_parameters=False,
        use_cpu=not on_gpu,
    )
    if on_gpu:
        kwargs.update(bf16=config.bf16, tf32=config.tf32)
        if config.gradient_checkpointing:
            kwargs.update(gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False})
    elif is_distributed():
        kwargs["ddp_backend"] = "gloo"
    return TrainingArguments(**kwargs)
