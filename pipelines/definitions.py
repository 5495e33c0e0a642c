"""The one Definitions object of the code location (loaded by workspace.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import dagster as dg

from assets.curriculum import build_curriculum_assets
from assets.evaluation import build_benchmark_assets, build_evaluation_assets
from assets.experiment import build_experiment_assets
from assets.finetune import build_finetune_assets
from assets.depth import build_depth_assets, depth_partitions
from assets.source_checks import build_source_checks
from assets.sources import build_source_assets, build_source_observations
from assets.tokens import build_box_token_assets, build_depth_token_assets
from assets.vqvae import build_vqvae_assets
from pipelines.automation import (evaluate_job, evaluate_new_adapter, experiment_evaluate_job, experiment_nightly_evaluation,
                                  keep_results_current, nightly_evaluation, with_automation)
from pipeline_lib.executors import build_executor
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.resources import BenchmarksResource, DatasetsResource, DepthTeacherResource, StorageResource
from pipeline_lib.settings import Settings, load_settings
from pipeline_lib.settings_resource import settings_with_resource_config
from pipeline_lib.torch_threads import apply_torch_threads


def build_resources(settings: Settings) -> dict[str, object]:
    """Every resource built from its settings section (pipeline_lib/settings_resource.py)."""
    storage = StorageResource.from_settings(settings)
    return {
        "io_manager": ParquetIOManagerFactory(root=storage.root, catalog_path=storage.catalog_path),
        "storage": storage,
        "datasets": DatasetsResource.from_settings(settings),
        "benchmarks": BenchmarksResource.from_settings(settings),
        "pipes_subprocess_client": dg.PipesSubprocessClient(cwd=str(Path(__file__).resolve().parents[1])),
        "depth_teacher": DepthTeacherResource.from_settings(settings),
    }


def definitions_with_run_config(settings: Settings, run_config: Mapping[str, Any]) -> dg.Definitions:
    """The definitions a run with this run config stands for: resource edits in the launchpad's
    shape (``{"resources": {name: {"config": {...}}}}``) are folded into the settings first, so
    they move the same code versions a YAML edit of the same setting moves."""
    resources_config = run_config.get("resources") or {}
    if not resources_config:
        return build_definitions(settings)
    return build_definitions(settings_with_resource_config(settings, build_resources(settings), resources_config))


# Who to ask about a stage (shown in the UI); teams rather than people so it survives turnover.
OWNERS_BY_GROUP = {
    "sources": "team:data", "depth": "team:perception", "tokens": "team:perception",
    "curriculum": "team:data", "finetune": "team:training", "evaluation": "team:evaluation",
}


def with_owners(assets: list) -> list:
    return list(dg.map_asset_specs(
        lambda spec: spec.replace_attributes(owners=[OWNERS_BY_GROUP.get(spec.group_name or "", "team:perception-tokens")]),
        assets,
    ))


def build_definitions(settings: Settings) -> dg.Definitions:
    shards = depth_partitions(settings.datasets.num_shards)
    vqvae_assets, vqvae_checks = build_vqvae_assets(settings)
    token_assets, token_checks = build_depth_token_assets(settings, shards)
    curriculum_assets, curriculum_checks = build_curriculum_assets(settings)
    finetune_assets, finetune_checks = build_finetune_assets(settings)
    evaluation_assets, evaluation_checks = build_evaluation_assets(settings)
    experiment_assets = build_experiment_assets(settings)  # none without an experiment section
    assets = [
        *build_source_assets(settings.datasets),
        *build_depth_assets(settings),
        *vqvae_assets,
        *token_assets,
        *build_box_token_assets(),
        *curriculum_assets,
        *finetune_assets,
        *build_benchmark_assets(settings),
        *evaluation_assets,
        *experiment_assets,
    ]
    assets = [*build_source_observations(), *with_owners(assets)]  # SourceAssets take owners in their constructor
    assets = with_automation(assets, settings.automation)
    checks = [*build_source_checks(settings.datasets.max_reject_fraction), *vqvae_checks, *token_checks,
              *curriculum_checks, *finetune_checks, *evaluation_checks]
    schedules, sensors, evaluate = [nightly_evaluation], [evaluate_new_adapter], evaluate_job
    finetune_selection = dg.AssetSelection.assets("lora_adapter")
    if settings.experiment:  # per-variant assets (curriculum__<variant>, ...): jobs select them; no single adapter to watch
        evaluate = experiment_evaluate_job([a.key.path[-1] for a in (*evaluation_assets, *experiment_assets)])
        schedules, sensors = [experiment_nightly_evaluation(evaluate)], []
        finetune_selection = dg.AssetSelection.assets(*(a.key for a in finetune_assets))
    sensors = [*sensors, keep_results_current(settings.automation)]
    jobs = [
        dg.define_asset_job("sources", selection=dg.AssetSelection.groups("sources"), description="Read every dataset root."),
        dg.define_asset_job(
            "per_image_shards",
            selection=dg.AssetSelection.assets("pseudo_depth", "depth_tokens").required_multi_asset_neighbors(),
            partitions_def=shards,
            description="Depth-label and tokenize one dataset shard (one run per partition; launch a backfill for all).",
        ),
        dg.define_asset_job("finetune", selection=finetune_selection,
                            description="LoRA fine-tune of LLaVA on the curriculum (GPU pool)."),
        evaluate,
        dg.define_asset_job("train_depth_tokenizer", selection=dg.AssetSelection.assets("depth_vqvae"),
                            description="Train and measure the VQ-VAE depth tokenizer."),
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=build_resources(settings),
        executor=build_executor(settings.execution),
    )


_settings = load_settings()
apply_torch_threads(_settings.execution.torch_threads)  # before any step imports torch; its subprocesses inherit it
defs = build_definitions(_settings)
