"""The one Definitions object of the code location (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from assets.depth import build_depth_assets
from assets.source_checks import build_source_checks
from assets.sources import build_source_assets
from pipelines.io_manager import ParquetIOManagerFactory
from pipelines.resources import DatasetsResource, DepthTeacherResource, StorageResource
from pipelines.settings import Settings, load_settings


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
        "depth_teacher": DepthTeacherResource(
            **{k: v for k, v in settings.depth.model_dump().items()},
            demo_root=str(settings.demo_root) if settings.demo.enabled else None,
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    assets = [*build_source_assets(settings.datasets), *build_depth_assets(settings)]
    checks = [*build_source_checks(settings.datasets.max_reject_fraction)]
    sources_job = dg.define_asset_job("sources", selection=dg.AssetSelection.groups("sources"), description="Read every dataset root.")
    depth_job = dg.define_asset_job(
        "pseudo_depth_shards", selection=dg.AssetSelection.assets("pseudo_depth").required_multi_asset_neighbors(),
        description="Label one dataset shard with the depth teacher (one run per partition; backfill for all).",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[sources_job, depth_job],
        resources=build_resources(settings),
    )


defs = build_definitions(load_settings())
