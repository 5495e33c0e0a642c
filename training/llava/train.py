"""The LoRA fine-tune: HF Trainer over the curriculum, in order, resumable, optionally distributed.

``run_finetune`` loads the base LLaVA, adds the perception tokens, wraps it with LoRA,
trains with a Trainer whose sampler never shuffles (the curriculum is the order), adds
the optional depth losses, checkpoints every ``save_steps`` and resumes from the last
checkpoint in ``out_dir`` at the same sample. At the end rank 0 writes the adapter with
the processor, ``token_map.json`` and ``finetune_config.json`` beside it, and a loss
curve PNG. Under ``torchrun`` the Trainer runs DDP (gloo on CPU, nccl on GPU).

``reload_adapter`` rebuilds the fine-tuned model from the adapter folder and the base
checkpoint; ``depth_span_wellformed_rate`` measures how often greedy decoding of the
atomic depth question yields exactly one well-formed depth span.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import SequentialSampler
from transformers import AutoProcessor, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback

from perception_tokens.vocab import TokenParseError, decode_depth, vocabulary_hash
from training.llava.data import ROLE_OF, ConversationDataset, LlavaCollator, generation_prompt, load_records, open_image, safe_image_path
from training.llava.lora import LoraSettings, apply_lora, param_groups, quiet_peft, trainable_summary
from training.llava.losses import DepthLossWeights, DepthTokenIds, depth_losses
from perception_tokens.llava_conversation import TEMPLATES, chat_template
from perception_tokens.vocab import DEPTH_START as DEPTH_START_TOKEN, skill_tokens, skills_in_text
from training.llava.model import TokenMap, add_perception_tokens, load_llava

DEPTH_PROMPT = "What is the depth map for the image?"
ADAPTER_DIRNAME = "adapter"
CHECKPOINT_DIRNAME = "checkpoints"
FINETUNE_CONFIG_FILE = "finetune_config.json"
LOSS_CURVE_FILE = "loss_curve.png"

Log = Callable[[str], None]
MetricsCallback = Callable[[dict[str, Any]], None]


@dataclass
class FinetuneConfig:
    """Everything that decides a fine-tune run (JSON-serialisable via to_dict/from_dict)."""

    checkpoint: str = "tiny"
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    per_device_batch_size: int = 4
    grad_accum: int = 1
    lr: float | None = None  # None: lora.lr
    projector_lr: float | None = None  # None: lora.projector_lr
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    max_grad_norm: float = 1.0
    bf16: bool = True  # GPU only
    tf32: bool = True  # GPU only
    gradient_checkpointing: bool = True  # GPU only
    save_steps: int = 500
    save_total_limit: int | None = 2
    logging_steps: int = 10
    seed: int = 0
    max_length: int | None = None
    pad_embeddings_to_multiple_of: int | None = None
    new_token_noise: float = 0.3  # new rows = mean + N(0, (noise x per-dim std)^2)
    dataloader_num_workers: int = 0
    resume: bool = True
    progress_bar: bool = False
    depth_losses: DepthLossWeights = field(default_factory=DepthLossWeights)
    # "plain": the processor's own chat template; "vicuna_v1"/"llava_v1": LLaVA's (Aurora trains with v1 = vicuna_v1)
    conversation: str = "plain"
    # "joint": every perception token is added; "per_skill": only the skills whose tokens the records use (Aurora)
    vocabulary: str = "joint"
    image_size: int | None = None  # Aurora squashes every image to 336x336 (nearest) before the processor
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        if isinstance(self.depth_losses, dict):
            self.depth_losses = DepthLossWeights(**self.depth_losses)
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if self.per_device_batch_size < 1 or self.grad_accum < 1:
            raise ValueError("per_device_batch_size and grad_accum must be >= 1")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.vocabulary not in ("joint", "per_skill"):
            raise ValueError(f"vocabulary must be 'joint' or 'per_skill', got {self.vocabulary!r}")
        if self.conversation not in TEMPLATES:
            raise ValueError(f"conversation must be one of {TEMPLATES}, got {self.conversation!r}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ValueError("need epochs > 0 or max_steps > 0")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else self.lora.lr

    @property
    def projector_learning_rate(self) -> float:
        return self.projector_lr if self.projector_lr is not None else self.lora.projector_lr

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora"] = self.lora.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FinetuneConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fine-tune config keys: {unknown}")
        return cls(**data)


@dataclass
class FinetuneResult:
    adapter_dir: Path
    final_loss: float
    loss_history: list[tuple[int, float]]
    tokens_per_s: float
    steps: int
    step_time_s: float = float("nan")
    loss_curve_png: Path | None = None
    token_map: TokenMap | None = None


# ---------------------------------------------------------------------------- trainer


class CurriculumTrainer(Trainer):
    """Trainer that keeps data order, uses per-part learning rates and adds depth losses."""

    def __init__(
        self,
        *args,
        lora_settings: LoraSettings,
        depth_ids: DepthTokenIds | None = None,
        depth_weights: DepthLossWeights | None = None,
        codebook: torch.Tensor | None = None,
        decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.lora_settings = lora_settings
        self.depth_ids = depth_ids
        self.depth_weights = depth_weights or DepthLossWeights()
        self.codebook = codebook
        self.decoder = decoder
        self._aux_sums: dict[str, float] = {}
        self._aux_count = 0

    def _get_train_sampler(self, train_dataset=None) -> SequentialSampler:
        # The curriculum is ordered on purpose: never shuffle. Under DDP, Accelerate shards
        # consecutive batches across ranks, so the global order is kept; on resume the
        # Trainer skips the batches already seen, so training continues at the same sample.
        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            groups = param_groups(
                self.model if model is None else model,
                LoraSettings(
                    **{
                        **self.lora_settings.to_dict(),
                        "lr": self.args.learning_rate,
                    }
                ),
            )
            self.optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate, betas=(0.9, 0.999), eps=1e-8)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.depth_weights.any():
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        aux = depth_losses(outputs.logits, labels, self.depth_ids, self.depth_weights, self.codebook, self.decoder)
        for name, value in aux.items():
            self._aux_sums[name] = self._aux_sums.get(name, 0.0) + float(value.detach())
        self._aux_count += 1
        # Match the LM loss's gradient-accumulation scaling: when it is already normalised over
        # the accumulated batch the Trainer will not divide, so divide the per-batch aux mean here.
        scaled = (
            self.loss_is_scaled_for_ga
            if self.loss_is_scaled_for_ga is not None
            else (self.model_accepts_loss_kwargs and num_items_in_batch is not None)
        )
        total_aux = aux["total"] / self.current_gradient_accumulation_steps if scaled else aux["total"]
        loss = loss + total_aux
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._aux_count and "loss" in logs:
            for name, total in self._aux_sums.items():
                logs[f"depth_{name}_loss"] = round(total / self._aux_count, 6)
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
        record.update({k: float(v) for k, v in logs.items() if k.startswith("depth_")})
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


# ---------------------------------------------------------------------------- run


def _is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _training_arguments(config: FinetuneConfig, checkpoint_dir: Path, on_gpu: bool) -> TrainingArguments:
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
    elif _is_distributed():
        kwargs["ddp_backend"] = "gloo"
    return TrainingArguments(**kwargs)


def last_complete_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing.

    ``trainer_state.json`` is written last, so a checkpoint folder without it was cut off
    mid-save (a kill, a full disk): skip it and resume from the one before.
    """
    complete = [p for p in checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file() and p.name.split("-")[-1].isdigit()]
    if not complete:
        return None
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1])))


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
    out_dir = Path(out_dir)
    on_gpu = torch.cuda.is_available()
    rank0 = int(os.environ.get("RANK", "0")) == 0
    say: Log = log if rank0 else (lambda _msg: None)
    if not on_gpu and (config.bf16 or config.tf32 or config.gradient_checkpointing):
        say("no GPU: bf16, tf32 and gradient checkpointing are off")
    set_seed(config.seed)
    dtype = torch.bfloat16 if (on_gpu and config.bf16) else torch.float32
    # Each rank builds its model straight on its own GPU (Trainer keeps it there).
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if on_gpu else "cpu"
    model, processor = load_llava(config.checkpoint, dtype=dtype, device=device, seed=config.seed)
    if config.conversation != "plain":  # saved with the processor, so evaluation renders prompts the same way
        processor.chat_template = chat_template(config.conversation, processor.image_token)
    if config.vocabulary == "per_skill":
        dataset_records = load_records(records) if isinstance(records, (str, os.PathLike)) else list(records)
        skills = skills_in_text(t["value"] for r in dataset_records for t in r["conversations"] if ROLE_OF.get(t["from"]) == "assistant")
        tokens = skill_tokens(skills or ["depth"])
        records = dataset_records
    else:
        tokens = None
    token_map = add_perception_tokens(
        model,
        processor.tokenizer,
        pad_to_multiple_of=config.pad_embeddings_to_multiple_of,
        seed=config.seed,
        noise_scale=config.new_token_noise,
        tokens=tokens,
    )
    model.config.use_cache = False
    set_seed(config.seed)  # LoRA init draws from the global RNG
    peft_model = apply_lora(model, token_map, config.lora)
    if on_gpu and config.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    say(f"trainable parameters: {trainable_summary(peft_model)}")

    dataset = ConversationDataset(records, image_dir, processor, max_length=config.max_length, image_size=config.image_size)
    checkpoint_dir = out_dir / CHECKPOINT_DIRNAME
    args = _training_arguments(config, checkpoint_dir, on_gpu)
    forwarder = MetricsForwarder(say, metrics_callback)
    trainer = CurriculumTrainer(
        model=peft_model,
        args=args,
        train_dataset=dataset,
        data_collator=LlavaCollator(pad_token_id=processor.tokenizer.pad_token_id),
        callbacks=[forwarder],
        lora_settings=LoraSettings(**{**config.lora.to_dict(), "projector_lr": config.projector_learning_rate}),
        depth_ids=DepthTokenIds.from_token_map(token_map) if DEPTH_START_TOKEN in token_map.ids else None,
        depth_weights=config.depth_losses,
        codebook=codebook,
        decoder=decoder,
    )
    trainer.remove_callback(PrinterCallback)  # MetricsForwarder reports instead (rank 0 only)
    last = last_complete_checkpoint(checkpoint_dir) if (config.resume and checkpoint_dir.is_dir()) else None
    if last:
        say(f"resuming from {last}")
    say(f"training on {len(dataset)} records, {'GPU' if on_gpu else 'CPU'}, world size {args.world_size}")
    trainer.train(resume_from_checkpoint=last)

    history = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history if "loss" in h]
    adapter_dir = out_dir / ADAPTER_DIRNAME
    curve = out_dir / LOSS_CURVE_FILE
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        base_rows = int(model.get_input_embeddings().weight.shape[0]) if hasattr(model, "get_input_embeddings") else None
        _save_adapter(peft_model, processor, token_map, config, adapter_dir, embedding_rows=base_rows)
        plot_loss_curve(history, curve, title=f"LoRA fine-tune ({config.checkpoint})")
    trainer.accelerator.wait_for_everyone()
    seconds = forwarder.session_seconds
    tokens_per_s = forwarder.session_tokens / seconds if seconds > 0 else float("nan")
    step_times = forwarder.step_times[1:] or forwarder.step_times  # the first includes warm-up
    result = FinetuneResult(
        adapter_dir=adapter_dir,
        final_loss=history[-1][1] if history else float("nan"),
        loss_history=history,
        tokens_per_s=tokens_per_s,
        steps=int(trainer.state.global_step),
        step_time_s=sum(step_times) / len(step_times) if step_times else float("nan"),
        loss_curve_png=curve,
        token_map=token_map,
    )
    say(
        f"done: {result.steps} steps, final loss {result.final_loss:.4f}, {result.tokens_per_s:.0f} tok/s, "
        f"adapter {adapter_dir}"
    )
    return result


def _save_adapter(peft_model, processor, token_map: TokenMap, config: FinetuneConfig, adapter_dir: Path, embedding_rows: int | None) -> None:
    """Write adapter + processor + token map + run config into a temp dir, then swap it in."""
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=adapter_dir.parent, prefix=f".{adapter_dir.name}."))
    try:
        # The new rows are rebuilt deterministically on reload and stored by the adapter
        # (trainable tokens or modules_to_save), so the full embedding matrices are not needed.
        peft_model.save_pretrained(str(tmp), save_embedding_layers=False)
        processor.save_pretrained(str(tmp))
        token_map.save(tmp)
        meta = {
            "base_checkpoint": config.checkpoint,
            "vocabulary_hash": vocabulary_hash(),
            "embedding_rows": embedding_rows,
            "config": config.to_dict(),
        }
        (tmp / FINETUNE_CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        old = adapter_dir.with_name(f".{adapter_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if adapter_dir.exists():
            os.replace(adapter_dir, old)
        os.replace(tmp, adapter_dir)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def plot_loss_curve(history: Sequence[tuple[int, float]], path: str | os.PathLike, title: str = "training loss") -> Path:
    """Loss vs step as a PNG (matplotlib Agg), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if history:
        steps, losses = zip(*history)
        ax.plot(steps, losses, marker=".", linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---------------------------------------------------------------------------- reload / evaluate


def reload_adapter(
    adapter_dir: str | os.PathLike,
    base_checkpoint: str | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
):
    """Base model -> same perception tokens -> same embedding size -> the saved adapter.

    ``base_checkpoint`` defaults to the one recorded in ``finetune_config.json``. The
    processor (with the perception tokens) is read from ``adapter_dir``; the token ids
    it gives must equal ``token_map.json``'s.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    meta_path = adapter_dir / FINETUNE_CONFIG_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_path}: cannot read the fine-tune record ({exc})") from exc
    base = base_checkpoint or meta["base_checkpoint"]
    saved_config = FinetuneConfig.from_dict(meta["config"])
    model, _ = load_llava(base, dtype=dtype, device="cpu", seed=saved_config.seed)
    processor = AutoProcessor.from_pretrained(str(adapter_dir))
    saved = TokenMap.load(adapter_dir)
    token_map = add_perception_tokens(
        model,
        processor.tokenizer,
        pad_to_multiple_of=saved_config.pad_embeddings_to_multiple_of,
        seed=saved_config.seed,
        noise_scale=saved_config.new_token_noise,
        tokens=saved.tokens(),
    )
    if token_map.ids != saved.ids:
        raise ValueError(f"{adapter_dir}: tokenizer ids differ from token_map.json; adapter and tokenizer do not match")
    rows = meta.get("embedding_rows")
    if rows and model.get_input_embeddings().weight.shape[0] != rows:
        model.resize_token_embeddings(rows, mean_resizing=False)
    with quiet_peft():
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    peft_model.to(device)
    peft_model.eval()
    return peft_model, processor


@torch.no_grad()
def generate_depth_answers(
    model,
    processor,
    images: Sequence[Any],
    *,
    image_dir: str | os.PathLike | None = None,
    max_new_tokens: int = 110,
    batch_size: int = 8,
    question: str = DEPTH_PROMPT,
) -> list[str]:
    """Greedy answers to the atomic depth question for each image (PIL image or LLaVA record)."""
    prompt = generation_prompt(processor, question)
    tokenizer = processor.tokenizer
    device = next(model.parameters()).device
    answers: list[str] = []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            chunk = [_as_image(item, image_dir) for item in images[start : start + batch_size]]
            inputs = processor(images=chunk, text=[prompt] * len(chunk), return_tensors="pt", padding=True).to(device)
            inputs["pixel_values"] = inputs["pixel_values"].to(next(model.parameters()).dtype)
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = out[:, inputs["input_ids"].shape[1] :]
            answers += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return answers


def _as_image(item: Any, image_dir: str | os.PathLike | None):
    if isinstance(item, dict):
        if image_dir is None:
            raise ValueError(f"record {item.get('id')}: an image_dir is needed to read its image")
        return open_image(safe_image_path(image_dir, item["image"]))
    return item


def is_wellformed_depth_answer(text: str) -> bool:
    """True iff ``text`` is exactly one depth span: START + 100 valid codes + END."""
    try:
        decode_depth(text)
    except TokenParseError:
        return False
    return True


def depth_span_wellformed_rate(
    model,
    processor,
    records: Sequence[Any],
    max_new_tokens: int = 110,
    *,
    image_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
) -> float:
    """Fraction of images whose greedy answer to the depth question is exactly one valid span."""
    if not records:
        return float("nan")
    answers = generate_depth_answers(
        model, processor, records, image_dir=image_dir, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    return sum(is_wellformed_depth_answer(a) for a in answers) / len(answers)
