"""Source assets: images and annotations read from ADE20K, LVIS v1 and RefCOCO roots.

Each asset writes its table and a ``<asset>_rejects`` table (file, id, reason, stage), so
a bad record never stops the run and never vanishes. A missing or malformed annotation
file fails the asset with the reader's message (file and problem).
"""


from pathlib import Path

import dagster as dg

from assets.versioning import code_version
from perception_tokens import schemas
from perception_tokens.datasets import ade20k, lvis, refcoco
from pipelines.emit import RejectSink, emit_table
from pipelines.resources import DatasetsResource, StorageResource

GROUP = "sources"
KINDS = {"parquet", "python"}
OWNERS: list[str] = []


def _outs(name: str, description: str, version: str) -> dict[str, dg.AssetOut]:
    return {
        name: dg.AssetOut(description=description, code_version=version, kinds=KINDS, group_name=GROUP),
        f"{name}_rejects": dg.AssetOut(
            description=f"Records of {name} that could not be read: file, id, reason, stage.",
            code_version=version,
            kinds=KINDS,
            group_name=GROUP,
        ),
    }


def build_source_assets(datasets_settings) -> list[dg.AssetsDefinition]:
    ds = datasets_settings
    # Each source's version folds in only the settings it reads, so editing one dataset's
    # config leaves the other sources fresh.
    ade = {"root": ds.ade20k_root, "splits": ds.ade20k_splits, "max_pixels": ds.max_image_pixels}
    lv = {"root": ds.lvis_root, "coco": ds.coco_root, "splits": ds.lvis_splits, "max_pixels": ds.max_image_pixels}
    ref = {"root": ds.refcoco_root, "coco": ds.coco_root, "max_pixels": ds.max_image_pixels}

    @dg.multi_asset(
        outs=_outs("ade20k_images", "ADE20K (SceneParsing 2016) images with ids, sizes, sha256 and encoded bytes.", code_version("1", ade)),
        can_subset=False,
    )
    def ade20k_images(context: dg.AssetExecutionContext, storage: StorageResource, datasets: DatasetsResource):
        datasets.ensure_demo_data(context.log)
        sink = RejectSink()
        rows = sink.rows(ade20k.iter_ade20k_images(Path(datasets.ade20k_root), splits=tuple(datasets.ade20k_splits), max_pixels=datasets.max_image_pixels))
        out = emit_table(context, storage, schemas.ADE20K_IMAGE_SCHEMA, rows, output_name="ade20k_images",
                         config={"root": datasets.ade20k_root, "splits": datasets.ade20k_splits})
        return out, sink.emit(context, storage, "ade20k_images_rejects")

    @dg.multi_asset(
        outs=_outs("lvis_images", "LVIS v1 images (COCO 2017 files) with negative / not-exhaustive category lists.", code_version("1", lv)),
        can_subset=False,
    )
    def lvis_images(context: dg.AssetExecutionContext, storage: StorageResource, datasets: DatasetsResource):
        datasets.ensure_demo_data(context.log)
        sink = RejectSink()

        def rows():
            for split in datasets.lvis_splits:
                index = lvis.read_lvis_annotations(Path(datasets.lvis_root) / f"lvis_v1_{split}.json")
                yield from sink.rows(lvis.iter_lvis_images(index, Path(datasets.coco_root), split, max_pixels=datasets.max_image_pixels))

        out = emit_table(context, storage, schemas.LVIS_IMAGE_SCHEMA, rows(), output_name="lvis_images",
                         config={"lvis_root": datasets.lvis_root, "coco_root": datasets.coco_root, "splits": datasets.lvis_splits})
        return out, sink.emit(context, storage, "lvis_images_rejects")

    @dg.multi_asset(
        outs=_outs("lvis_instances", "LVIS v1 annotations, one row per instance: ids, category, bbox, area, exhaustiveness.", code_version("1", {k: lv[k] for k in ("root", "splits")})),
        can_subset=False,
    )
    def lvis_instances(context: dg.AssetExecutionContext, storage: StorageResource, datasets: DatasetsResource):
        datasets.ensure_demo_data(context.log)
        sink = RejectSink()

        def rows():
            for split in datasets.lvis_splits:
                index = lvis.read_lvis_annotations(Path(datasets.lvis_root) / f"lvis_v1_{split}.json")
                yield from sink.rows(lvis.iter_lvis_instances(index, split))

        out = emit_table(context, storage, schemas.LVIS_INSTANCE_SCHEMA, rows(), output_name="lvis_instances",
                         config={"lvis_root": datasets.lvis_root, "splits": datasets.lvis_splits})
        return out, sink.emit(context, storage, "lvis_instances_rejects")

    @dg.multi_asset(
        outs=_outs("refcoco_images", "RefCOCO (UNC) images (COCO train2014 files) referred to by expressions.", code_version("1", ref)),
        can_subset=False,
    )
    def refcoco_images(context: dg.AssetExecutionContext, storage: StorageResource, datasets: DatasetsResource):
        datasets.ensure_demo_data(context.log)
        sink = RejectSink()
        root = Path(datasets.refcoco_root)
        index = refcoco.read_refcoco(root / "refs(unc).p", root / "instances.json")
        rows = sink.rows(refcoco.iter_refcoco_images(index, Path(datasets.coco_root), max_pixels=datasets.max_image_pixels))
        out = emit_table(context, storage, schemas.REFCOCO_IMAGE_SCHEMA, rows, output_name="refcoco_images",
                         config={"refcoco_root": datasets.refcoco_root, "coco_root": datasets.coco_root})
        return out, sink.emit(context, storage, "refcoco_images_rejects")

    @dg.multi_asset(
        outs=_outs("refcoco_refs", "RefCOCO referring expressions, one row per sentence, with the referred box.", code_version("1", {"root": ds.refcoco_root})),
        can_subset=False,
    )
    def refcoco_refs(context: dg.AssetExecutionContext, storage: StorageResource, datasets: DatasetsResource):
        datasets.ensure_demo_data(context.log)
        sink = RejectSink()
        root = Path(datasets.refcoco_root)
        index = refcoco.read_refcoco(root / "refs(unc).p", root / "instances.json")
        rows = sink.rows(refcoco.iter_refcoco_refs(index))
        out = emit_table(context, storage, schemas.REFCOCO_REF_SCHEMA, rows, output_name="refcoco_refs",
                         config={"refcoco_root": datasets.refcoco_root})
        return out, sink.emit(context, storage, "refcoco_refs_rejects")

    return [ade20k_images, lvis_images, lvis_instances, refcoco_images, refcoco_refs]
