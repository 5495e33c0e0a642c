"""The curriculum LoRA fine-tune for Qwen2.5-VL, on the shared trainer machinery of training/llava.

Same contract as :func:`training.llava.train.run_finetune` (ordered curriculum, resumable
checkpoints, depth losses, adapter + processor + token map + ``finetune_config.json``);
what differs is Qwen's: the model and processor, the encoding (chat template, dynamic
resolution, packed image patches), the LoRA targets (tied or untied head) and the merger's
learning rate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from transformers import set_seed
from transformers.trainer_callback import PrinterCallback

from training.llava.lora import LoraSettings, quiet_peft
from training.llava.losses import DepthTokenIds
from training.llava.model import TokenMap, add_perception_tokens
from training.llava.train import (
    ADAPTER_DIRNAME,
    CHECKPOINT_DIRNAME,
    FINETUNE_CONFIG_FILE,
    LOSS_CURVE_FILE,
    CurriculumTrainer,
    FinetuneConfig,
    FinetuneResult,
    MetricsForwarder,
    _save_adapter,
    _training_arguments,
    last_complete_checkpoint,
    plot_loss_curve,
)

from training.backends.qwen2_5_vl.data import QwenCollator, QwenConversationDataset
from training.backends.qwen2_5_vl.lora import apply_lora, param_groups, trainable_summary
from training.backends.qwen2_5_vl.model import QWEN_PERCEPTION_TOKENS, load_processor, load_qwen2_5_vl

FAMILY = "qwen2_5_vl"


class QwenCurriculumTrainer(CurriculumTrainer):
    """The curriculum trainer with the patch merger as the projector parameter group."""

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            settings = LoraSettings(**{**self.lora_settings.to_dict(), "lr": self.args.learning_rate})
            groups = param_groups(self.model if model is None else model, settings)
            self.optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate, betas=(0.9, 0.999), eps=1e-8)
        return self.optimizer


def add_tokens(model, processor, config: FinetuneConfig) -> TokenMap:
    """Perception tokens with ids from the tokenizer; rows landing in Qwen's padded rows are re-initialised."""
    return add_perception_tokens(model, processor.tokenizer, pad_to_multiple_of=config.pad_embeddings_to_multiple_of,
                                 seed=config.seed, noise_scale=config.new_token_noise, tokens=QWEN_PERCEPTION_TOKENS)


def run_finetune(
    config: FinetuneConfig,
    records: Sequence[dict[str, Any]] | str | os.PathLike,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    log: Callable[[str], None] = print,
    metrics_callback: Callable[[dict[str, Any]], None] | None = None,
    codebook: torch.Tensor | None = None,
    decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> FinetuneResult:
    """Fine-tune ``config.checkpoint`` (a Qwen2.5-VL preset or checkpoint) on ``records``, in order."""
    out_dir = Path(out_dir)
    on_gpu = torch.cuda.is_available()
    rank0 = int(os.environ.get("RANK", "0")) == 0
    say = log if rank0 else (lambda _msg: None)
    set_seed(config.seed)
    dtype = torch.bfloat16 if (on_gpu and config.bf16) else torch.float32
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if on_gpu else "cpu"
    model, processor = load_qwen2_5_vl(config.checkpoint, dtype=dtype, device=device, seed=config.seed)
    token_map = add_tokens(model, processor, config)
    model.config.use_cache = False
    set_seed(config.seed)  # LoRA init draws from the global RNG
    peft_model = apply_lora(model, token_map, config.lora)
    if on_gpu and config.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    say(f"trainable parameters: {trainable_summary(peft_model)}")

    dataset = QwenConversationDataset(records, image_dir, processor, max_length=config.max_length)
    checkpoint_dir = out_dir / CHECKPOINT_DIRNAME
    args = _training_arguments(config, checkpoint_dir, on_gpu)
    forwarder = MetricsForwarder(say, metrics_callback)
    trainer = QwenCurriculumTrainer(
        model=peft_model, args=args, train_dataset=dataset,
        data_collator=QwenCollator(pad_token_id=processor.tokenizer.pad_token_id), callbacks=[forwarder],
        lora_settings=LoraSettings(**{**config.lora.to_dict(), "projector_lr": config.projector_learning_rate}),
        depth_ids=DepthTokenIds.from_token_map(token_map), depth_weights=config.depth_losses,
        codebook=codebook, decoder=decoder,
    )
    trainer.remove_callback(PrinterCallback)
    last = last_complete_checkpoint(checkpoint_dir) if (config.resume and checkpoint_dir.is_dir()) else None
    if last:
        say(f"resuming from {last}")
    say(f"training Qwen2.5-VL on {len(dataset)} records, {'GPU' if on_gpu else 'CPU'}, world size {args.world_size}")
    trainer.train(resume_from_checkpoint=last)

    history = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history if "loss" in h]
    adapter_dir = out_dir / ADAPTER_DIRNAME
    curve = out_dir / LOSS_CURVE_FILE
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        rows = int(model.get_input_embeddings().weight.shape[0])
        _save_adapter(peft_model, processor, token_map, config, adapter_dir, embedding_rows=rows)
        record_family(adapter_dir, FAMILY)
        plot_loss_curve(history, curve, title=f"LoRA fine-tune (Qwen2.5-VL {config.checkpoint})")
    trainer.accelerator.wait_for_everyone()
    seconds = forwarder.session_seconds
    step_times = forwarder.step_times[1:] or forwarder.step_times
    result = FinetuneResult(
        adapter_dir=adapter_dir,
        final_loss=history[-1][1] if history else float("nan"),
        loss_history=history,
        tokens_per_s=forwarder.session_tokens / seconds if seconds > 0 else float("nan"),
        steps=int(trainer.state.global_step),
        step_time_s=sum(step_times) / len(step_times) if step_times else float("nan"),
        loss_curve_png=curve,
        token_map=token_map,
    )
    say(f"done: {result.steps} steps, final loss {result.final_loss:.4f}, {result.tokens_per_s:.0f} tok/s, adapter {adapter_dir}")
    return result


def record_family(adapter_dir: Path, family: str) -> None:
    """Add ``family`` to the adapter's ``finetune_config.json`` (atomic rewrite), so loaders can dispatch."""
    path = Path(adapter_dir) / FINETUNE_CONFIG_FILE
    meta = json.loads(path.read_text())
    meta["family"] = family
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp, path)


def reload_adapter(adapter_dir: str | os.PathLike, base_checkpoint: str | None = None, *,
                   dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Base Qwen2.5-VL -> same perception tokens (ids checked against token_map.json) -> the saved adapter."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    meta_path = adapter_dir / FINETUNE_CONFIG_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_path}: cannot read the fine-tune record ({exc})") from exc
    saved_config = FinetuneConfig.from_dict(meta["config"])
    model, _ = load_qwen2_5_vl(base_checkpoint or meta["base_checkpoint"], dtype=dtype, seed=saved_config.seed)
    processor = load_processor(str(adapter_dir))
    token_map = add_tokens(model, processor, saved_config)
    if token_map.ids != TokenMap.load(adapter_dir).ids:
        raise ValueError(f"{adapter_dir}: tokenizer ids differ from token_map.json; adapter and tokenizer do not match")
    rows = meta.get("embedding_rows")
    if rows and model.get_input_embeddings().weight.shape[0] != rows:
        model.resize_token_embeddings(rows, mean_resizing=False)
    with quiet_peft():
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    peft_model.to(device)
    peft_model.eval()
    return peft_model, processor
