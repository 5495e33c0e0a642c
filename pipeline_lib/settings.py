"""The project's configuration file: one YAML document, validated before any work starts.

``PTOK_CONFIG`` names the file (default: ``configs/demo.yaml``). Relative paths in it are
resolved against ``PTOK_WORKDIR`` (default: the current directory), so the same file works
from the Makefile, the web UI and the tests. An invalid file fails at load time with the
field's dotted name in the message.

The file is read as UTF-8 with YAML aliases bounded (a 452-byte "billion laughs" file
would otherwise expand to gigabytes when validated), and every key is checked: unknown
keys, including those inside ``vqvae.overrides``, ``finetune.depth_losses`` and
``curriculum.difficulties``, fail naming the key.

The sections live in settings_sections.py (data, machinery) and settings_stages.py (training
chain); reading the file in settings_loading.py; profiles in profiles.py. This module holds the
root model with its derived paths, and validation; import everything from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError, model_validator

from pipeline_lib.profiles import PROFILES, apply_profile
from pipeline_lib.settings_experiment import ExperimentSettings, merged_sections
from pipeline_lib.settings_loading import DEFAULT_CONFIG, PROJECT_ROOT, config_path, read_config_file, workdir
from pipeline_lib.settings_sections import (
    AURORA_DEPTH,
    AutomationSettings,
    ConfigError,
    DatasetSettings,
    DemoSettings,
    DepthSettings,
    ExecutionSettings,
    RaySettings,
    StorageSettings,
    _Section,
)
from pipeline_lib.settings_stages import (
    VQVAE_PRESET_TRAINING,
    CurriculumSettings,
    EvaluationSettings,
    FinetuneSettings,
    VQVAESettings,
)

__all__ = [
    "AURORA_DEPTH", "AutomationSettings", "DEFAULT_CONFIG", "PROJECT_ROOT", "VQVAE_PRESET_TRAINING", "ConfigError", "CurriculumSettings",
    "DatasetSettings", "DemoSettings", "DepthSettings", "EvaluationSettings", "ExecutionSettings", "FinetuneSettings",
    "RaySettings", "Settings", "StorageSettings", "VQVAESettings", "config_path", "load_settings", "settings_from_dict",
    "workdir",
]


class Settings(_Section):
    # "aurora": every stage uses the reference implementation's settings (pipeline_lib/profiles.py, FIDELITY.md);
    # "perceptio": Perceptio's (arXiv 2603.18795) where the paper gives them (FIDELITY.md "Perceptio: the profile");
    # "project": this project's defaults. Values set in the file always win over the profile's.
    # "vpt": VPT (arXiv 2502.17425) on Qwen2-VL: region / re-encoding tokens, two stages (FIDELITY.md "VPT")
    profile: Literal["project", "aurora", "perceptio", "vpt"] = "project"
    storage: StorageSettings = StorageSettings()
    demo: DemoSettings = DemoSettings()
    datasets: DatasetSettings = DatasetSettings()
    depth: DepthSettings = DepthSettings()
    vqvae: VQVAESettings = VQVAESettings()
    curriculum: CurriculumSettings = CurriculumSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    execution: ExecutionSettings = ExecutionSettings()
    automation: AutomationSettings = AutomationSettings()
    # the paper's comparison: named variants of the curriculum / finetune / evaluation sections
    # (settings_experiment.py); None: one pipeline, as without variants
    experiment: ExperimentSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("profile", "project") in PROFILES:
            return apply_profile(raw)
        return raw

    @model_validator(mode="after")
    def _vpt_agrees(self) -> "Settings":
        """A VPT curriculum and a VPT fine-tune must use one region grid (the tokens the data holds)."""
        vpt = self.finetune.vpt
        if self.curriculum.is_vpt() != bool(vpt.get("enabled")):
            raise ValueError("curriculum.tasks are VPT's but finetune.vpt.enabled is not set, or the other way round: "
                             "a VPT curriculum trains only with finetune.vpt (profile: vpt sets both)")
        if vpt.get("enabled"):
            from perception_tokens import regions

            train_grid = vpt.get("grid", regions.DEFAULT_GRID)
            data_grid = self.curriculum.vpt.get("grid", regions.DEFAULT_GRID)
            if train_grid != data_grid:
                raise ValueError(f"finetune.vpt.grid {train_grid} differs from curriculum.vpt.grid {data_grid}: "
                                 "set both (the curriculum writes regions on its grid, the fine-tune adds that grid's tokens)")
        return self

    @model_validator(mode="after")
    def _variants_valid(self) -> "Settings":
        for name in self.variant_names():
            try:
                self.variant_settings(name)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"experiment.variants.{name}: {problems}") from None
        return self

    # ----------------------------------------------------------------- experiment variants
    def variant_names(self) -> list[str]:
        return list(self.experiment.variants) if self.experiment else []

    def variant_settings(self, name: str) -> "Settings":
        """The settings a variant's assets run with: these settings with the variant's curriculum /
        finetune / evaluation keys written over them (the shared stages' sections are untouched)."""
        if self.experiment is None or name not in self.experiment.variants:
            raise KeyError(f"no experiment variant {name!r}; variants: {self.variant_names()}")
        return Settings.model_validate(merged_sections(self.model_dump(), self.experiment.variants[name]))

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

    def dataset_root(self, name: Literal["ade20k", "lvis", "coco", "refcoco", "refcoco_plus", "refcocog"]) -> Path:
        configured = getattr(self.datasets, f"{name}_root")
        if configured:
            return Path(self.resolve(configured))  # type: ignore[arg-type]
        if not self.demo.enabled:
            raise ConfigError(f"datasets.{name}_root is not set and demo.enabled is false")
        sub = {"ade20k": "ADEChallengeData2016", "lvis": "lvis", "coco": "coco", "refcoco": "refcoco",
               "refcoco_plus": "refcoco+", "refcocog": "refcocog"}[name]
        return (self.demo_root / sub).resolve()

    def uses_demo(self, name: str) -> bool:
        return self.demo.enabled and not getattr(self.datasets, f"{name}_root")


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate the YAML config; errors name the file and the field."""
    path = Path(path) if path else config_path()
    return settings_from_dict(read_config_file(path), source=str(path))


def settings_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid config {source}: {problems}") from exc
