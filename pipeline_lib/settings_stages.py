"""The settings sections of the training chain's stages: depth tokenizer (VQ-VAE), curriculum,
LoRA fine-tune and evaluation."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_serializer, model_validator

from pipeline_lib.settings_sections import _Section, dataclass_keys_known, unknown_keys_problem


# Training defaults per preset; a value set in the YAML file wins. ``aurora`` is the
# reference's schedule (ait_depth_vqvae.py:26-31, train_depth_vqvae_dist.py:116,168):
# Adam 3e-4, x0.98 every 500 batches, 20 epochs of batch 8, all maps (no hold-out).
VQVAE_PRESET_TRAINING: dict[str, dict[str, Any]] = {
    "tiny": dict(epochs=30, batch_size=32, lr=1e-3, lr_decay_gamma=0.98, lr_decay_every=0, drop_last=False,
                 holdout_fraction=0.15),
    "aurora": dict(epochs=20, batch_size=8, lr=3e-4, lr_decay_gamma=0.98, lr_decay_every=500, drop_last=True,
                   holdout_fraction=0.0),
}


class VQVAESettings(_Section):
    """The depth tokenizer: the reference AiT VQ-VAE (``aurora``: 320 px, hidden_dim 16 doubling
    over 5 stride-2 convs, 128 x 512 EMA codebook, the reference's training schedule) or the
    project's variant at ``tiny`` size (80 px, 3 downsamples, 128 x 64 codes, k-means init,
    dead-code restarts). Unset training fields take the preset's values
    (``VQVAE_PRESET_TRAINING``). ``init_checkpoint``: a reference ``vae-final.pt`` (or a
    project checkpoint directory) whose weights are adopted (``epochs: 0``) or fine-tuned."""

    preset: Literal["tiny", "aurora"] = "tiny"
    overrides: dict[str, Any] = {}  # any VQVAEConfig field, e.g. {code_dim: 256}

    @field_validator("overrides")
    @classmethod
    def _known_override_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return dataclass_keys_known(value, "training.vqvae.model.VQVAEConfig", "VQVAEConfig")

    init_checkpoint: str | None = None
    epochs: int = Field(30, ge=0)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    lr_decay_gamma: float = Field(0.98, gt=0, le=1)
    lr_decay_every: int = Field(0, ge=0)  # 0: once per epoch; N: after batches 0, N, 2N, ... of each epoch
    drop_last: bool = False
    seed: int = 0
    device: str = "auto"
    checkpoint_every_steps: int = Field(50, ge=0)
    holdout_fraction: float = Field(0.15, ge=0, lt=1)  # images held out (by id hash) for quality; 0: measured on all
    min_closest_point_agreement: float = Field(0.95, ge=0, le=1)
    min_codebook_usage: float = Field(0.5, ge=0, le=1)  # fraction of codes used on held-out maps
    extract_batch_size: int = Field(64, ge=1)
    nproc_per_node: int = Field(1, ge=1)  # > 1: torchrun data-parallel training (gloo on CPU, nccl on GPU)
    # training arithmetic; float64 makes N processes train what one does to ~1e-15 (weights saved float32)
    dtype: Literal["float32", "float64"] = "float32"
    # which pseudo_depth maps train the tokenizer: every dataset (the project's), the ADE20K training maps
    # alone (aurora: the reference's ADE_depth/, ait_depth_vqvae.py:21), or the train-split images of
    # RefCOCO/+/g, the images the LLM is fine-tuned on (perceptio: Perceptio sec. 3.2)
    data: Literal["all_datasets", "ade20k_train", "refer_train"] = "all_datasets"
    # epoch order: a bounded shuffle buffer over the stream (project) or one seeded permutation of every
    # map per epoch (aurora: DistributedSampler(shuffle=True) + set_epoch, train_depth_vqvae_dist.py:83,156-158)
    shuffle: Literal["buffer", "permutation"] = "buffer"

    @model_validator(mode="before")
    @classmethod
    def _preset_training_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            preset = data.get("preset", "tiny")
            data = {**VQVAE_PRESET_TRAINING.get(preset, {}), **data}
        return data

    def model_post_init(self, _context: Any) -> None:
        if self.epochs == 0 and not self.init_checkpoint:
            raise ValueError("vqvae.epochs 0 trains nothing: set vqvae.init_checkpoint to adopt a checkpoint")


class CurriculumSettings(_Section):
    """Marked-point images, task pools and the schedule that orders them."""

    # Aurora trains one adapter per skill (depth on ADE20K, counting on LVIS); pick the tasks here
    tasks: list[Literal["depth_atomic", "depth_cot", "depth_direct", "count_atomic", "count_cot", "count_direct",
                        "ground_atomic", "ground_depth", "refer_segment", "vpt_region", "vpt_reencode", "vpt_plain"]] = [
        "depth_atomic", "depth_cot", "depth_direct", "count_atomic", "count_cot", "count_direct", "ground_atomic", "ground_depth"]
    marked_fraction: float = Field(0.5, gt=0, le=1)  # share of images that get a marked-point version
    min_points: int = Field(2, ge=2, le=5)
    max_points: int = Field(5, ge=2, le=5)
    variants: list[Literal["beside", "center"]] = ["beside", "center"]
    # "aurora": the reference notebooks' marked points (PIL, x/y in 0..300, 20 px / 20 depth apart, ADE20K
    # only), depth CoT wording, and counting selection + wording; "project": this project's own (see FIDELITY.md);
    # "perceptio": Perceptio's mix (refer_segment on every RefCOCO/+/g train sentence, optional depth_atomic), one
    # seeded shuffle per epoch (perception_tokens/curriculum/perceptio_pools.py)
    style: Literal["project", "aurora", "perceptio"] = "project"
    marked_max_images: int | None = Field(None, ge=1)  # aurora: 500 (ADE_500files.npy); None: every chosen image
    # an image whose longer side exceeds this many times its shorter side is rejected, not marked (both
    # styles squeeze it into a square); None marks every image, as the reference notebooks do
    marked_max_aspect_ratio: float | None = Field(4.0, gt=1)
    count_atomic_images: int | None = Field(None, ge=1)  # aurora style: 5000 (Bbox/train_ids.npy)
    count_cot_images: int | None = Field(None, ge=1)  # aurora style: 250 (Bbox/cot_ids.npy), disjoint from the above
    # the reference's shipped selections (pipeline_lib/reference_selections.py): a clone of Aurora-perception whose
    # ADE_500files.npy, point_label_mappings.json, Bbox/train_ids.npy + cot_ids.npy and Bbox/plurals.json (converted
    # by `ptok convert-plurals`) are used when present; absent ones fall back to the seeded draw (said in metadata)
    reference_repo: str | None = None  # aurora: "Aurora-perception" (relative to the working directory)
    marked_images_file: str | None = None  # ADE_500files.npy; default <reference_repo>/AiT/vae/ADE_500files.npy
    marked_points_file: str | None = None  # point_label_mappings.json; default <reference_repo>/AiT/vae/...
    count_image_ids: str | None = None  # folder with train_ids.npy / cot_ids.npy; default <reference_repo>/Bbox
    max_per_count: int = Field(1000, ge=1)  # aurora style: images per count value
    # JSON {"category name": "plural"} (Aurora's GPT-4o table); default <reference_repo>/Bbox/plurals.json, else rule-based
    plurals_file: str | None = None
    schedule: Literal["aurora", "annealed"] = "aurora"
    # aurora schedule: "shuffled" mixes atomic and reasoning samples inside an epoch (project); "sequential" is
    # the notebooks' block: sampled atomic samples, then the reasoning list (direct before CoT) in fixed order
    mixing: Literal["shuffled", "sequential"] = "shuffled"
    epochs: int = Field(10, ge=1)
    percents: list[float] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    epoch_size: int | None = Field(None, ge=1)  # default: epoch_size_by_skill's, else the atomic pool's size
    # N per skill when epoch_size is unset and every task is of one skill; aurora: the notebooks' total_length,
    # depth 20000 (create_depth_annealing_data.ipynb cell 3), counting 5000 (create_bbox_annealing_data.ipynb cell 7)
    epoch_size_by_skill: dict[Literal["depth", "count", "ground"], int] = {}
    # annealed: p(d_t, s) ~ exp(-d_t / tau(s)); "growing" tau moves mass toward harder tasks over time
    difficulties: dict[str, float] = {
        "depth_atomic": 1.0, "count_atomic": 1.0, "ground_atomic": 1.0,
        "depth_direct": 2.0, "count_direct": 2.0, "ground_depth": 3.0, "depth_cot": 3.0, "count_cot": 3.0,
    }
    tau0: float = Field(1.0, gt=0)
    lam: float = 4.0
    temperature_form: Literal["paper", "growing"] = "growing"
    total_samples: int | None = Field(None, ge=1)  # annealed: default = epochs x atomic pool size
    bottleneck: bool = False  # CoT answers keep only perception tokens and the conclusion
    # "text": boxes and points as plain integers on the 336 grid instead of <PIXEL_k> tokens (the paper's
    # text-coordinates ablation; perception_tokens/curriculum/text_coordinates.py)
    coordinates: Literal["tokens", "text"] = "tokens"
    ground_pairs_per_image: int = Field(2, ge=0)
    seed: int = 0
    mix_tolerance: float = Field(0.05, ge=0, le=1)
    # VPT's tasks (vpt_region / vpt_reencode / vpt_plain; perception_tokens.curriculum.vpt_pools.VptCurriculum:
    # grid, align_fraction, small_max_area, shares); empty: the defaults. VPT tasks order by their stages,
    # not by ``schedule``, and do not mix with the other tasks (a VPT fine-tune is another vocabulary).
    vpt: dict[str, Any] = {}

    @field_validator("vpt")
    @classmethod
    def _known_vpt_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:  # keys, then values (the dataclass checks its ranges), so a bad value fails at load
            from perception_tokens.curriculum.vpt_pools import VptCurriculum

            VptCurriculum(**dataclass_keys_known(value, "perception_tokens.curriculum.vpt_pools.VptCurriculum", "curriculum.vpt"))
        return value

    @model_serializer(mode="wrap")
    def _omit_unset_vpt(self, handler):
        # unset: left out of the dump, so every curriculum's code version written before the field stays
        data = handler(self)
        if isinstance(data, dict) and not data.get("vpt"):
            data.pop("vpt", None)
        return data

    def is_vpt(self) -> bool:
        return any(task.startswith("vpt_") for task in self.tasks)

    def model_post_init(self, _context: Any) -> None:
        perceptio_tasks = {"refer_segment", "depth_atomic"}
        if self.style == "perceptio" and ("refer_segment" not in self.tasks or not set(self.tasks) <= perceptio_tasks):
            raise ValueError(f"curriculum.style perceptio makes {sorted(perceptio_tasks)} (refer_segment required); "
                             f"tasks {self.tasks}")
        if "refer_segment" in self.tasks and self.style != "perceptio":
            raise ValueError("curriculum.tasks refer_segment needs curriculum.style perceptio")
        if self.is_vpt() and not all(task.startswith("vpt_") for task in self.tasks):
            raise ValueError(f"curriculum.tasks {self.tasks} mix VPT tasks with others: a VPT fine-tune trains "
                             "another vocabulary; list only vpt_region / vpt_reencode / vpt_plain")
        if self.min_points > self.max_points:
            raise ValueError(f"curriculum.min_points ({self.min_points}) > curriculum.max_points ({self.max_points})")
        if not self.tasks:
            raise ValueError("curriculum.tasks is empty")
        if self.epoch_size is None and self.epoch_size_by_skill:
            skills = sorted({task.split("_")[0] for task in self.tasks})
            if len(skills) > 1:
                raise ValueError(f"curriculum.tasks span the skills {skills} and curriculum.epoch_size_by_skill gives N per "
                                 "skill (the reference trains one skill per run): set curriculum.epoch_size")
            self.epoch_size = self.epoch_size_by_skill.get(skills[0])
        if self.schedule == "aurora" and len(self.percents) < self.epochs:
            raise ValueError(f"curriculum.percents has {len(self.percents)} values for {self.epochs} epochs")

    @field_validator("difficulties")
    @classmethod
    def _known_task_keys(cls, value: dict[str, float]) -> dict[str, float]:
        unknown_keys_problem("task", value, get_args(get_args(cls.model_fields["tasks"].annotation)[0]))
        return value


class FinetuneSettings(_Section):
    """LoRA fine-tune of LLaVA with the perception-token vocabulary (training/llava)."""

    checkpoint: str = "tiny"  # "tiny" | "random-7b" | "random-13b" | local dir | hub id (llava-hf/llava-1.5-13b-hf)
    # model family (a folder of training/backends: llava, qwen2_5_vl); None: detected from the checkpoint's config.json
    family: str | None = None
    nproc_per_node: int = Field(1, ge=1)  # > 1: torchrun (gloo on CPU, nccl on GPU)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    per_device_batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    # the optimiser's batch: per_device_batch_size x nproc_per_node x grad_accum. Set, it fixes grad_accum
    # (which must then divide evenly); aurora: 128 = 16 per device x the paper's 8 GPUs x accumulation 1
    # (finetune_task_lora_depth_annealing.sh:24,26)
    global_batch_size: int | None = Field(None, ge=1)
    lr: float = Field(2e-4, gt=0)
    projector_lr: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    save_steps: int = Field(500, ge=1)
    logging_steps: int = Field(10, ge=1)
    lora_r: int = Field(128, ge=1)
    lora_alpha: int = Field(256, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    new_token_mode: Literal["trainable_token_indices", "modules_to_save"] = "trainable_token_indices"
    # new embedding rows: mean of the old rows + seeded noise (project), or the model's own N(0, initializer_range)
    # init, as the reference's resize_token_embeddings on transformers 4.37.2 (aurora; train.py:981)
    new_row_init: Literal["mean_noise", "model_init"] = "mean_noise"
    depth_losses: dict[str, float] = {}  # marker / token / count weights (0 = off)

    @field_validator("depth_losses")
    @classmethod
    def _known_loss_keys(cls, value: dict[str, float]) -> dict[str, float]:
        return dataclass_keys_known(value, "training.llava.losses.DepthLossWeights", "depth loss")
    span_samples: int = Field(8, ge=0)  # atomic depth prompts to measure well-formed spans before/after
    seed: int = 0
    timeout_s: int = Field(24 * 3600, ge=60)
    # aurora: images squashed to 336x336 (nearest) before the processor; project: the processor's resize + centre crop
    image_resize: Literal["processor", "squash336_nearest"] = "processor"
    # aurora: LLaVA's vicuna_v1 template with its system prompt (--version v1); project: the processor's own template
    conversation: Literal["plain", "vicuna_v1", "llava_v1"] = "plain"
    # aurora ("per_skill"): a run adds only its skill's tokens (depth: <DEPTH_START>=32000, <DEPTH_END>=32001,
    # <DEPTH_k>=32002+k on LLaVA-1.5); project ("joint"): depth and pixel tokens in one vocabulary
    vocabulary: Literal["joint", "per_skill"] = "joint"
    # Perceptio's [SEG] -> SAM2 head (training.segmentation.settings.SegmentationSettings: enabled,
    # sam2_checkpoint, weight, bce_weight, dice_weight, lr); empty: off, and no [SEG] token
    segmentation: dict[str, Any] = {}
    # VPT (training.vpt.settings.VptSettings: enabled, grid, reencoder, control_tokens, mask_modeling,
    # align_epochs, align_lr, projector_heads, max_actions); empty: off, and no VPT token
    vpt: dict[str, Any] = {}

    @field_validator("segmentation")
    @classmethod
    def _known_segmentation_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return dataclass_keys_known(value, "training.segmentation.settings.SegmentationSettings", "segmentation")

    @field_validator("vpt")
    @classmethod
    def _known_vpt_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:  # keys, then values (torch-free dataclass)
            from training.vpt.settings import VptSettings

            VptSettings(**dataclass_keys_known(value, "training.vpt.settings.VptSettings", "finetune.vpt"))
        return value

    @model_serializer(mode="wrap")
    def _omit_unset_segmentation(self, handler):
        # An unset segmentation (or vpt) is left out of the dump, so the code versions (and so the
        # staleness) of every config written before the field existed stay as they were.
        data = handler(self)
        for name in ("segmentation", "vpt"):
            if isinstance(data, dict) and not data.get(name):
                data.pop(name, None)
        return data

    def model_post_init(self, _context: Any) -> None:
        from training.backends import families  # cheap: lists folders, imports no model code

        if self.family is not None and self.family not in families():
            raise ValueError(f"finetune.family {self.family!r} is not one of {families()}")
        if self.vpt.get("enabled") and self.family != "qwen2_vl":
            raise ValueError(f"finetune.vpt trains on finetune.family qwen2_vl (VPT's base model), not {self.family!r}")
        if self.global_batch_size is not None:
            per_step = self.per_device_batch_size * self.nproc_per_node
            accum, rest = divmod(self.global_batch_size, per_step)
            if rest or not accum:
                raise ValueError(f"finetune.global_batch_size {self.global_batch_size} is not a multiple of per_device_batch_size "
                                 f"{self.per_device_batch_size} x nproc_per_node {self.nproc_per_node} = {per_step}")
            if "grad_accum" in self.model_fields_set and self.grad_accum != accum:
                raise ValueError(f"finetune.grad_accum {self.grad_accum} contradicts global_batch_size {self.global_batch_size} "
                                 f"= {self.per_device_batch_size} x {self.nproc_per_node} x {accum}: set one of them")
            self.grad_accum = accum

    @property
    def effective_global_batch_size(self) -> int:
        """Samples per optimiser step: per_device_batch_size x nproc_per_node x grad_accum."""
        return self.per_device_batch_size * self.nproc_per_node * self.grad_accum


class EvaluationSettings(_Section):
    """Benchmarks and how the fine-tuned model is evaluated on them."""

    # benchmark -> folder in its published layout; unset ones use demo sets (when demo.enabled)
    roots: dict[str, str] = {}  # keys: evaluation.benchmarks.registry.names()
    # counting set -> its image folder (released apart from the jsonl files); default <root>/images
    images: dict[str, str] = {}

    @field_validator("roots", "images")
    @classmethod
    def _registered_benchmarks(cls, value: dict[str, str], info) -> dict[str, str]:
        from evaluation.benchmarks.registry import check_names  # the one list of benchmarks

        check_names(value, f"evaluation.{info.field_name}", needs_image_folder=info.field_name == "images")
        return value
    demo_scenes: int = Field(24, ge=1)
    demo_seed: int = 1000  # held-out scenes: a seed stream the training demo data never uses
    max_per_subset: int | None = Field(8, ge=1)  # None: every question
    runs: list[tuple[Literal["direct", "cot"], Literal["none", "normal", "oracle", "random"]]] = [
        ("direct", "none"), ("cot", "normal"), ("cot", "oracle"), ("cot", "random")]
    constrained: bool = True
    max_new_tokens: int = Field(160, ge=1)  # aurora: 1024 (model_vqa.py)
    count_cot_instruction: Literal["project", "aurora"] = "project"  # aurora: the counting CoT prompt of its data
    # prompt template at evaluation: "adapter" = the one saved with the adapter's processor; aurora: llava_v1 (model_vqa.py)
    conversation: Literal["adapter", "plain", "vicuna_v1", "llava_v1"] = "adapter"
    batch_size: int = Field(8, ge=1)
    # "paper" (aurora): BLINK 2-point depth and CV-Bench counting asked without their answer choices, as the
    # paper evaluates them; "benchmark": every dataset's own multiple-choice prompt
    prompts: Literal["benchmark", "paper"] = "benchmark"
    # constrained decoding of box tokens (well-formed, never collapsing boxes); aurora: off, the reference's
    # counting model decodes freely (model_vqa.py:69-72); depth spans stay as `constrained` says
    constrain_boxes: bool = True
    # "reference" (aurora): fp16, LoRA merged, one question at a time (builder.py:42,90,142-144, model_vqa.py:42-67);
    # "project": the loaded model's dtype (float32 on CPU), LoRA unmerged, batch_size questions per forward pass
    numerics: Literal["project", "reference"] = "project"
    seed: int = 0
    model: Literal["adapter", "base"] = "adapter"  # base: evaluate finetune.checkpoint without the adapter
