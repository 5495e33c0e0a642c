"""The settings sections of the data and the machinery: storage, demo world, dataset roots,
depth teacher, execution (Ray, executors); and the base every section shares.

Every section forbids unknown keys, so a misspelt key fails at load time naming it.
"""

from __future__ import annotations

import importlib
from dataclasses import fields as dataclass_fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ConfigError(ValueError):
    pass


def unknown_keys_problem(name: str, given: dict, known: list[str] | tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"unknown {name} key(s) {unknown}; known keys: {sorted(known)}")


def dataclass_keys_known(value: dict[str, Any], dataclass_path: str, what: str) -> dict[str, Any]:
    """``value`` unchanged when every key is a field of the dataclass ``module.Name``; else an error
    naming the unknown ``what`` keys. The dataclass is imported only for a non-empty ``value``: its
    module imports torch, which loading a config should not cost."""
    if value:
        module, _, name = dataclass_path.rpartition(".")
        known = [f.name for f in dataclass_fields(getattr(importlib.import_module(module), name))]
        unknown_keys_problem(what, value, known)
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    refcoco_plus_root: str | None = None  # RefCOCO+: folder holding refs(unc).p and instances.json (refer's data/refcoco+)
    refcocog_root: str | None = None  # RefCOCOg: folder holding refs(umd).p and instances.json (refer's data/refcocog)
    # which referring datasets fill refcoco_refs (one table, ``dataset`` column); Aurora uses RefCOCO only
    refer_datasets: list[Literal["refcoco", "refcoco+", "refcocog"]] = Field(["refcoco"], min_length=1)
    ade20k_splits: list[Literal["training", "validation"]] = ["training", "validation"]
    lvis_splits: list[Literal["train", "val"]] = ["train", "val"]
    max_image_pixels: int = Field(50_000_000, ge=1)
    max_reject_fraction: float = Field(0.05, ge=0.0, le=1.0)
    num_shards: int = Field(2, ge=1, le=4096)  # shard count for per-image stages

    @field_validator("refer_datasets")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"datasets.refer_datasets names a dataset twice: {value}")
        return value


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
    # CPU threads of torch's operators in every step and the processes it starts; None: torch's default
    # (one per core). The demo sets 1: on a shared machine far faster for its toy models (pipeline_lib/torch_threads.py)
    torch_threads: int | None = Field(None, ge=1)

    def engine_settings(self):
        """The pure-code view of ``engine`` + ``ray`` (perception_tokens.engine.EngineSettings)."""
        from perception_tokens.engine import EngineSettings

        return EngineSettings(kind=self.engine, **self.ray.model_dump())


class AutomationSettings(_Section):
    """What re-runs by itself while ``dagster dev`` (or the daemon) runs: Dagster's declarative
    automation, wired in pipelines/automation.py. ``ptok`` runs are not affected.

    The dataset roots are re-observed on ``observe_cron``; a changed root re-reads its source
    tables and re-labels only the ``pseudo_depth`` shards its images reach, then their tokens, the
    marked points and the curriculum, as soon as their inputs are there. The fine-tune starts at
    most once per ``nightly_cron`` tick, and only when its input changed since it last ran."""

    # default status of the keep_results_current sensor (and the observation cron with it):
    # RUNNING when true. Once toggled in the UI, the instance remembers the UI's choice.
    enabled: bool = False
    observe_cron: str = "0 * * * *"  # re-observe every dataset root (a stat per file; hashes only moved files)
    nightly_cron: str = "0 3 * * *"  # the fine-tune (and depth_vqvae, if retrained) may start after this tick
    timezone: str = "UTC"
    # retraining the depth tokenizer changes every depth code, so every depth_tokens shard and the
    # fine-tune follow; off by default: one added image is not worth a new codebook
    retrain_depth_vqvae: bool = False

    @field_validator("observe_cron", "nightly_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        import dagster as dg

        try:
            dg.AutomationCondition.cron_tick_passed(value)
        except Exception as exc:  # dagster's CheckError: say which value, not where it was checked
            raise ValueError(f"{value!r} is not a cron schedule") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from exc
        return value
