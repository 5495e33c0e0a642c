"""The one Definitions object of the code location (loaded by workspace.yaml)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.curriculum import build_curriculum_assets
from assets.evaluation import build_benchmark_assets, build_evaluation_assets
from assets.finetune import build_finetune_assets
from assets.depth import build_depth_assets, depth_partitions
from assets.source_checks import build_source_checks
from assets.sources import build_source_assets, build_source_observations
from assets.tokens import build_box_token_assets, build_depth_token_assets
from assets.vqvae import build_vqvae_assets
from pipelines.automation import evaluate_job, evaluate_new_adapter, nightly_evaluation
from pipeline_lib.executors import build_executor
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.resources import BenchmarksResource, DatasetsResource, DepthTeacherResource, StorageResource
from pipeline_lib.settings import Settings, load_settings


def build_resources(settings: Settings) -> dict[str, object]:
    ds = settings.datasets
    catalog = str(settings.catalog_path)
    return {
        "io_manager": ParquetIOManagerFactory(root=settings.storage_root, catalog_path=catalog),
        "storage": StorageResource(root=settings.storage_root, catalog_path=catalog, row_group_rows=settings.storage.row_group_rows),
        "datasets": DatasetsResource(
            ade20k_root=str(settings.dataset_root("ade20k")),
            lvis_root=str(settings.dataset_root("lvis")),
            coco_root=str(settings.dataset_root("coco")),
            refcoco_root=str(settings.dataset_root("refcoco")),
            ade20k_splits=list(ds.ade20k_splits),
            lvis_splits=list(ds.lvis_splits),
            max_image_pixels=ds.max_image_pixels,
            max_reject_fraction=ds.max_reject_fraction,
            num_shards=ds.num_shards,
            demo_enabled=settings.demo.enabled,
            demo_root=str(settings.demo_root),
            demo_seed=settings.demo.seed,
            demo_n_ade20k=settings.demo.n_ade20k,
            demo_n_lvis=settings.demo.n_lvis,
            demo_n_refcoco=settings.demo.n_refcoco,
            demo_width=settings.demo.width,
            demo_height=settings.demo.height,
        ),
        "benchmarks": BenchmarksResource(
            roots={k: str(settings.resolve(v)) for k, v in settings.evaluation.roots.items()},
            images={k: str(settings.resolve(v)) for k, v in settings.evaluation.images.items()},
            demo_enabled=settings.demo.enabled,
            demo_root=str(settings.demo_root / "benchmarks"),
            demo_scenes=settings.evaluation.demo_scenes,
            demo_seed=settings.evaluation.demo_seed,
        ),
        "pipes_subprocess_client": dg.PipesSubprocessClient(cwd=str(Path(__file__).resolve().parents[1])),
        "depth_teacher": DepthTeacherResource(
            **settings.depth.model_dump(),
            demo_root=str(settings.demo_root) if settings.demo.enabled else None,
        ),
    }


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
    vq_assets, vq_checks = build_vqvae_assets(settings)
    tok_assets, tok_checks = build_depth_token_assets(settings, shards)
    cur_assets, cur_checks = build_curriculum_assets(settings)
    ft_assets, ft_checks = build_finetune_assets(settings)
    ev_assets, ev_checks = build_evaluation_assets(settings)
    assets = [
        *build_source_assets(settings.datasets),
        *build_depth_assets(settings),
        *vq_assets,
        *tok_assets,
        *build_box_token_assets(),
        *cur_assets,
        *ft_assets,
        *build_benchmark_assets(settings),
        *ev_assets,
    ]
    assets = [*build_source_observations(), *with_owners(assets)]  # SourceAssets take owners in their constructor
    checks = [*build_source_checks(settings.datasets.max_reject_fraction), *vq_checks, *tok_checks, *cur_checks, *ft_checks, *ev_checks]
    jobs = [
        dg.define_asset_job("sources", selection=dg.AssetSelection.groups("sources"), description="Read every dataset root."),
        dg.define_asset_job(
            "per_image_shards",
            selection=dg.AssetSelection.assets("pseudo_depth", "depth_tokens").required_multi_asset_neighbors(),
            partitions_def=shards,
            description="Depth-label and tokenize one dataset shard (one run per partition; launch a backfill for all).",
        ),
        dg.define_asset_job("finetune", selection=dg.AssetSelection.assets("lora_adapter"),
                            description="LoRA fine-tune of LLaVA on the curriculum (GPU pool)."),
        evaluate_job,
        dg.define_asset_job("train_depth_tokenizer", selection=dg.AssetSelection.assets("depth_vqvae"),
                            description="Train and measure the VQ-VAE depth tokenizer."),
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=[nightly_evaluation],
        sensors=[evaluate_new_adapter],
        resources=build_resources(settings),
        executor=build_executor(settings.execution),
    )


defs = build_definitions(load_settings())
