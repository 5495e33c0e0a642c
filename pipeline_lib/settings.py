"""The project's configuration file: one YAML document, validated before any work starts.

``PTOK_CONFIG`` names the file (default: ``configs/demo.yaml``). Relative paths in it are
resolved against ``PTOK_WORKDIR`` (default: the current directory), so the same file works
from the Makefile, the web UI and the tests. An invalid file fails at load time with the
field's dotted name in the message.

The file is read as UTF-8 with YAML aliases bounded (a 452-byte "billion laughs" file
would otherwise expand to gigabytes when validated), and every key is checked: unknown
keys, including those inside ``vqvae.overrides``, ``finetune.depth_losses`` and
``curriculum.difficulties``, fail naming the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from dataclasses import fields as dataclass_fields
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline_lib.profiles import PROFILES, apply_profile
from pipeline_lib.yaml_bounded import YamlExpansionError, load_yaml_bounded

DEFAULT_CONFIG = "configs/demo.yaml"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _unknown_keys_problem(name: str, given: dict, known: list[str] | tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"unknown {name} key(s) {unknown}; known keys: {sorted(known)}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def fingerprint(self) -> str:
        """Short hash of this section; folded into code versions so config edits mark assets stale."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:10]


class StorageSettings(_Section):
    root: str = ".ptok/storage"  # local path or fsspec URL (s3://bucket/prefix)
    catalog: str | None = None  # DuckDB file; default <root>/catalog.duckdb (local roots only)
    row_group_rows: int = Field(256, ge=1)


class DemoSettings(_Section):
    enabled: bool = True
    root: str = ".ptok/demo_data"
    n_ade20k: int = Field(60, ge=2)
    n_lvis: int = Field(60, ge=2)
    n_refcoco: int = Field(40, ge=2)
    seed: int = 0
    width: int = Field(320, ge=64)
    height: int = Field(240, ge=64)


class DatasetSettings(_Section):
    """Roots of the real datasets. Unset roots fall back to the demo data when demo.enabled."""

    ade20k_root: str | None = None  # the ADEChallengeData2016 folder (holds images/ and annotations/)
    lvis_root: str | None = None  # folder holding lvis_v1_train.json / lvis_v1_val.json
    coco_root: str | None = None  # folder holding train2017/ val2017/ train2014/
    refcoco_root: str | None = None  # folder holding refs(unc).p and instances.json
    ade20k_splits: list[Literal["training", "validation"]] = ["training", "validation"]
    lvis_splits: list[Literal["train", "val"]] = ["train", "val"]
    max_image_pixels: int = Field(50_000_000, ge=1)
    max_reject_fraction: float = Field(0.05, ge=0.0, le=1.0)
    num_shards: int = Field(2, ge=1, le=4096)  # shard count for per-image stages


# What Aurora's pseudo-depth was (Aurora-perception README.md:40-43): Depth Anything V1
# ViT-S through the official run.py --grayscale. The dpt_dinov2 implementation and the
# keep_aspect handling reproduce that network and run.py; see docs/FIDELITY.md.
AURORA_DEPTH = {
    "teacher": "depth_anything_hub",
    "version": 1,
    "encoder": "vits",
    "implementation": "dpt_dinov2",
    "resize": "keep_aspect",
    "input_size": 518,
    "autocast": False,  # run.py runs the model in float32 (run.py:75-76)
}


class DepthSettings(_Section):
    """The depth teacher for ``pseudo_depth``.

    ``preset: aurora`` is the teacher Aurora used (``AURORA_DEPTH``); give it the official
    ``depth_anything_vits14.pth`` as ``checkpoint``. Fields the preset fixes may be left out;
    setting one to another value is an error. ``preset: custom`` takes every field as given.
    """

    preset: Literal["custom", "aurora"] = "custom"
    teacher: Literal["ground_truth", "depth_anything_hub", "depth_anything_hf"] = "ground_truth"
    checkpoint: str | None = None  # depth_anything_hub: local .pth (official or transformers keys)
    version: Literal[1, 2] = 2
    encoder: Literal["vits", "vitb", "vitl", "tiny"] = "vits"
    # depth_anything_hub network: transformers' classes, or (V1) our DPT_DINOv2 under the official
    # key names with the official position-embedding rule for non-square inputs
    implementation: Literal["transformers", "dpt_dinov2"] = "transformers"
    # square: fixed input_size square, whole batches in one pass (the project's);
    # keep_aspect: the official V1 run.py (short side >= input_size, multiples of 14)
    resize: Literal["square", "keep_aspect"] = "square"
    repo_dir: str | None = None  # depth_anything_hub: optional official Depth-Anything-V2 clone
    hub_repo: str | None = None  # torch.hub repo (default: the project's hub dir); 'owner/repo:ref' with hub_source=github
    hub_source: Literal["local", "github"] = "local"
    model: str | None = None  # depth_anything_hf: local dir or hub id
    input_size: int = Field(518, ge=14)
    batch_size: int = Field(8, ge=1)
    device: str = "auto"
    autocast: bool = True  # bf16 autocast on CUDA (never on CPU)

    def model_post_init(self, _context: Any) -> None:
        if self.preset == "aurora":
            conflicts = [
                f"{name}={getattr(self, name)!r} (aurora: {value!r})"
                for name, value in AURORA_DEPTH.items()
                if name in self.model_fields_set and getattr(self, name) != value
            ]
            if conflicts:
                raise ValueError(f"depth.preset aurora fixes these fields; remove or change: {', '.join(conflicts)}")
            for name, value in AURORA_DEPTH.items():
                setattr(self, name, value)
        if self.input_size % 14:
            raise ValueError(f"depth.input_size must be a multiple of 14, got {self.input_size}")
        if self.teacher == "depth_anything_hub" and not self.checkpoint:
            raise ValueError("depth.checkpoint is required for teacher depth_anything_hub")
        if self.teacher == "depth_anything_hf" and not self.model:
            raise ValueError("depth.model is required for teacher depth_anything_hf")
        if self.implementation == "dpt_dinov2" and (self.teacher != "depth_anything_hub" or self.version != 1):
            raise ValueError("depth.implementation dpt_dinov2 needs teacher depth_anything_hub and version 1")


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
        if value:  # only then import the model module (torch)
            from training.vqvae.model import VQVAEConfig

            _unknown_keys_problem("VQVAEConfig", value, [f.name for f in dataclass_fields(VQVAEConfig)])
        return value

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
                        "ground_atomic", "ground_depth"]] = [
        "depth_atomic", "depth_cot", "depth_direct", "count_atomic", "count_cot", "count_direct", "ground_atomic", "ground_depth"]
    marked_fraction: float = Field(0.5, gt=0, le=1)  # share of images that get a marked-point version
    min_points: int = Field(2, ge=2, le=5)
    max_points: int = Field(5, ge=2, le=5)
    variants: list[Literal["beside", "center"]] = ["beside", "center"]
    # "aurora": the reference notebooks' marked points (PIL, x/y in 0..300, 20 px / 20 depth apart, ADE20K
    # only), depth CoT wording, and counting selection + wording; "project": this project's own (see FIDELITY.md)
    style: Literal["project", "aurora"] = "project"
    marked_max_images: int | None = Field(None, ge=1)  # aurora: 500 (ADE_500files.npy); None: every chosen image
    count_atomic_images: int | None = Field(None, ge=1)  # aurora style: 5000 (Bbox/train_ids.npy)
    count_cot_images: int | None = Field(None, ge=1)  # aurora style: 250 (Bbox/cot_ids.npy), disjoint from the above
    count_image_ids: str | None = None  # folder with Aurora's train_ids.npy / cot_ids.npy (int arrays) to use instead
    max_per_count: int = Field(1000, ge=1)  # aurora style: images per count value
    plurals_file: str | None = None  # JSON {"category name": "plural"} (Aurora's GPT-4o table); default: rule-based
    schedule: Literal["aurora", "annealed"] = "aurora"
    # aurora schedule: "shuffled" mixes atomic and reasoning samples inside an epoch (project); "sequential" is
    # the notebooks' block: sampled atomic samples, then the reasoning list (direct before CoT) in fixed order
    mixing: Literal["shuffled", "sequential"] = "shuffled"
    epochs: int = Field(10, ge=1)
    percents: list[float] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    epoch_size: int | None = Field(None, ge=1)  # default: the atomic pool's size
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
    ground_pairs_per_image: int = Field(2, ge=0)
    seed: int = 0
    mix_tolerance: float = Field(0.05, ge=0, le=1)

    def model_post_init(self, _context: Any) -> None:
        if self.min_points > self.max_points:
            raise ValueError(f"curriculum.min_points ({self.min_points}) > curriculum.max_points ({self.max_points})")
        if not self.tasks:
            raise ValueError("curriculum.tasks is empty")
        if self.schedule == "aurora" and len(self.percents) < self.epochs:
            raise ValueError(f"curriculum.percents has {len(self.percents)} values for {self.epochs} epochs")

    @field_validator("difficulties")
    @classmethod
    def _known_task_keys(cls, value: dict[str, float]) -> dict[str, float]:
        _unknown_keys_problem("task", value, get_args(get_args(cls.model_fields["tasks"].annotation)[0]))
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
    lr: float = Field(2e-4, gt=0)
    projector_lr: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    save_steps: int = Field(500, ge=1)
    logging_steps: int = Field(10, ge=1)
    lora_r: int = Field(128, ge=1)
    lora_alpha: int = Field(256, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    new_token_mode: Literal["trainable_token_indices", "modules_to_save"] = "trainable_token_indices"
    depth_losses: dict[str, float] = {}  # marker / token / count weights (0 = off)

    @field_validator("depth_losses")
    @classmethod
    def _known_loss_keys(cls, value: dict[str, float]) -> dict[str, float]:
        if value:  # only then import the loss module (torch)
            from training.llava.losses import DepthLossWeights

            _unknown_keys_problem("depth loss", value, [f.name for f in dataclass_fields(DepthLossWeights)])
        return value
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

    def model_post_init(self, _context: Any) -> None:
        from training.backends import families  # cheap: lists folders, imports no model code

        if self.family is not None and self.family not in families():
            raise ValueError(f"finetune.family {self.family!r} is not one of {families()}")


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
    seed: int = 0
    model: Literal["adapter", "base"] = "adapter"  # base: evaluate finetune.checkpoint without the adapter


class RaySettings(_Section):
    """The Ray cluster for ``execution.engine: ray`` (see perception_tokens.engine.EngineSettings)."""

    address: str | None = None  # None: a local cluster; "auto": this node's cluster; "ray://head:10001": KubeRay
    num_workers: int = Field(2, ge=1)  # actors, each holding one model
    num_cpus_per_worker: float = Field(1.0, gt=0)
    num_gpus_per_worker: float = Field(0.0, ge=0)  # 1 on a GPU cluster
    max_in_flight_per_worker: int = Field(2, ge=1)
    max_restarts: int = Field(3, ge=0)  # a killed worker is restarted and its batch rerun this many times
    num_cpus: int = Field(2, ge=1)  # local cluster only
    object_store_mb: int = Field(256, ge=64)  # local cluster only


class ExecutionSettings(_Section):
    """How runs launched from the UI execute: local processes, or one Kubernetes job per step.

    ``engine`` is where the per-image work of pseudo_depth, depth_tokens and marked_points
    runs inside a step: in the step's process, or mapped over a Ray cluster (``ray``)."""

    engine: Literal["inprocess", "ray"] = "inprocess"
    ray: RaySettings = RaySettings()

    executor: Literal["multiprocess", "k8s"] = "multiprocess"
    max_concurrent: int = Field(2, ge=1)  # multiprocess: steps at once (shards of pseudo_depth run side by side)
    k8s_namespace: str = "default"
    k8s_image: str | None = None  # image with this project installed (k8s executor)
    gpu_per_step: int = Field(1, ge=0)  # nvidia.com/gpu for the accelerator-pool steps (depth, VQ-VAE, fine-tune, eval)

    def engine_settings(self):
        """The pure-code view of ``engine`` + ``ray`` (perception_tokens.engine.EngineSettings)."""
        from perception_tokens.engine import EngineSettings

        return EngineSettings(kind=self.engine, **self.ray.model_dump())


class Settings(_Section):
    # "aurora": every stage uses the reference implementation's settings (pipeline_lib/profiles.py, FIDELITY.md);
    # "project": this project's defaults. Values set in the file always win over the profile's.
    profile: Literal["project", "aurora"] = "project"
    storage: StorageSettings = StorageSettings()
    demo: DemoSettings = DemoSettings()
    datasets: DatasetSettings = DatasetSettings()
    depth: DepthSettings = DepthSettings()
    vqvae: VQVAESettings = VQVAESettings()
    curriculum: CurriculumSettings = CurriculumSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    execution: ExecutionSettings = ExecutionSettings()

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("profile", "project") in PROFILES:
            return apply_profile(raw)
        return raw

    # ----------------------------------------------------------------- derived paths
    def resolve(self, path: str | None) -> str | None:
        if path is None or "://" in path:
            return path
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (workdir() / p).resolve())

    @property
    def storage_root(self) -> str:
        return self.resolve(self.storage.root)  # type: ignore[return-value]

    @property
    def catalog_path(self) -> Path:
        if self.storage.catalog:
            return Path(self.resolve(self.storage.catalog))  # type: ignore[arg-type]
        if "://" in self.storage.root:
            return workdir() / ".ptok" / "catalog.duckdb"
        return Path(self.storage_root) / "catalog.duckdb"

    @property
    def demo_root(self) -> Path:
        return Path(self.resolve(self.demo.root))  # type: ignore[arg-type]

    def dataset_root(self, name: Literal["ade20k", "lvis", "coco", "refcoco"]) -> Path:
        configured = getattr(self.datasets, f"{name}_root")
        if configured:
            return Path(self.resolve(configured))  # type: ignore[arg-type]
        if not self.demo.enabled:
            raise ConfigError(f"datasets.{name}_root is not set and demo.enabled is false")
        sub = {"ade20k": "ADEChallengeData2016", "lvis": "lvis", "coco": "coco", "refcoco": "refcoco"}[name]
        return (self.demo_root / sub).resolve()

    def uses_demo(self, name: str) -> bool:
        return self.demo.enabled and not getattr(self.datasets, f"{name}_root")


class ConfigError(ValueError):
    pass


def workdir() -> Path:
    return Path(os.environ.get("PTOK_WORKDIR", os.getcwd())).resolve()


def config_path() -> Path:
    """PTOK_CONFIG (default configs/demo.yaml); a relative path is looked up in the working
    directory first, then in the project (so `configs/real.yaml` works from either)."""
    p = Path(os.environ.get("PTOK_CONFIG", DEFAULT_CONFIG))
    if p.is_absolute():
        return p
    in_workdir = workdir() / p
    return in_workdir if in_workdir.exists() or not (PROJECT_ROOT / p).exists() else PROJECT_ROOT / p


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate the YAML config; errors name the file and the field."""
    path = Path(path) if path else config_path()
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        raw = load_yaml_bounded(text, f"config file {path}") or {}
    except YamlExpansionError as exc:
        raise ConfigError(str(exc)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return settings_from_dict(raw, source=str(path))


def settings_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid config {source}: {problems}") from exc
