"""The fine-tune run config, built from the pipeline's ``finetune`` settings section by one constructor.

``FinetuneConfig.from_settings(section)`` takes the section as a plain mapping (the
pydantic section's ``model_dump()``; this package does not import the pipeline): a key
that names a config field is taken as is, the few keys that are spelled differently are
mapped by ``SETTINGS_RENAMED``, the ones that only steer the launcher are listed in
``NOT_FOR_TRAINING``, and any other key is an error, so a new settings field either
reaches the config or is named here, never silently dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from perception_tokens.llava_conversation import TEMPLATES
from training.finetune.lora_settings import LoraSettings
from training.llava.loss_weights import DepthLossWeights
from training.segmentation.settings import SegmentationSettings
from training.vpt.settings import VptSettings

# aurora: every image squashed to 336x336 (nearest) before the processor (Aurora's train.py:721)
SQUASH_SIZE = {"processor": None, "squash336_nearest": 336}

# settings key -> (config path, value converter): the keys not spelled as the config spells them
SETTINGS_RENAMED: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "lora_r": (("lora", "r"), int),
    "lora_alpha": (("lora", "alpha"), int),
    "lora_dropout": (("lora", "dropout"), float),
    "new_token_mode": (("lora", "new_token_mode"), str),
    "image_resize": (("image_size",), SQUASH_SIZE.__getitem__),
}
# settings keys that steer the launch or the probes, not the training run
# (global_batch_size is resolved into grad_accum by the settings: per_device x nproc x grad_accum)
NOT_FOR_TRAINING = frozenset({"nproc_per_node", "span_samples", "timeout_s", "global_batch_size"})


@dataclass
class FinetuneConfig:
    """Everything that decides a fine-tune run (JSON-serialisable via to_dict/from_dict)."""

    checkpoint: str = "tiny"
    family: str | None = None  # a folder of training/backends; None: detected from the checkpoint
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
    new_row_init: str = "mean_noise"  # "model_init": N(0, initializer_range), as the reference's resize (tokens.py)
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
    # Perceptio's [SEG] -> SAM2 head (off: no [SEG] token, vocabulary and adapter as before)
    segmentation: SegmentationSettings = field(default_factory=SegmentationSettings)
    # VPT's region / re-encoding tokens, two stages and mask modeling (off: none of it)
    vpt: VptSettings = field(default_factory=VptSettings)

    def __post_init__(self) -> None:
        if isinstance(self.vpt, dict):
            self.vpt = VptSettings(**self.vpt)
        if isinstance(self.segmentation, dict):
            self.segmentation = SegmentationSettings(**self.segmentation)
        if isinstance(self.depth_losses, dict):
            self.depth_losses = DepthLossWeights(**self.depth_losses)
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if self.per_device_batch_size < 1 or self.grad_accum < 1:
            raise ValueError("per_device_batch_size and grad_accum must be >= 1")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.new_row_init not in ("mean_noise", "model_init"):
            raise ValueError(f"new_row_init must be 'mean_noise' or 'model_init', got {self.new_row_init!r}")
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
    def from_dict(cls, data: Mapping[str, Any]) -> "FinetuneConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fine-tune config keys: {unknown}")
        return cls(**data)

    @classmethod
    def from_settings(cls, section: Mapping[str, Any]) -> "FinetuneConfig":
        """The config of the pipeline's ``finetune`` settings section (its ``model_dump()``)."""
        known = {f.name for f in fields(cls)}
        data: dict[str, Any] = {"lora": {}}
        unknown = []
        for key, value in section.items():
            if key in NOT_FOR_TRAINING:
                continue
            if key in SETTINGS_RENAMED:
                path, convert = SETTINGS_RENAMED[key]
                target = data["lora"] if path[0] == "lora" else data
                target[path[-1]] = convert(value)
            elif key in known and key != "lora":
                data[key] = dict(value) if key in ("depth_losses", "segmentation", "vpt") else value
            else:
                unknown.append(key)
        if unknown:
            raise ValueError(f"finetune settings keys {sorted(unknown)} are neither FinetuneConfig fields nor listed in "
                             "training.finetune.config SETTINGS_RENAMED / NOT_FOR_TRAINING")
        return cls.from_dict(data)


@dataclass
class FinetuneResult:
    adapter_dir: Path
    final_loss: float
    loss_history: list[tuple[int, float]]
    tokens_per_s: float
    steps: int
    step_time_s: float = float("nan")
    loss_curve_png: Path | None = None
    token_map: Any = None  # training.finetune.tokens.TokenMap
    # the segmentation head's loss at each log step (weighted BCE + DICE; empty without finetune.segmentation)
    seg_loss_history: list[tuple[int, float]] = field(default_factory=list)
    stages: dict[str, list[tuple[int, float]]] | None = None  # a VPT run: each stage's (step, loss)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable figures (the token map stays in the adapter folder)."""
        return {
            "adapter_dir": str(self.adapter_dir),
            "final_loss": self.final_loss,
            "loss_history": [list(p) for p in self.loss_history],
            "tokens_per_s": self.tokens_per_s,
            "steps": self.steps,
            "step_time_s": self.step_time_s,
            "loss_curve_png": str(self.loss_curve_png) if self.loss_curve_png else None,
            "seg_loss_history": [list(p) for p in self.seg_loss_history],
            **({"stages": {k: [list(p) for p in v] for k, v in self.stages.items()}} if self.stages else {}),
        }
