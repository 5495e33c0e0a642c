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
from pipeline_lib.emit import RejectSink, emit_table
from pipeline_lib.file_fingerprint import fingerprint_tree
from pipeline_lib.resources import DatasetsResource, StorageResource

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


def _observed_root(dataset: str, root_attr: str, description: str):
    """An observable source asset whose data version is the fingerprint of one dataset root:
    when a file under it is replaced, added or removed, the sources reading it turn stale."""

    @dg.observable_source_asset(name=f"{dataset}_files", group_name=GROUP, description=description, owners=["team:data"])
    def observe(context, datasets: DatasetsResource, storage: StorageResource) -> dg.ObserveResult:
        datasets.ensure_demo_data(context.log)  # observe what the sources will read, not an empty folder
        root = Path(getattr(datasets, root_attr))
        fp = fingerprint_tree(root, storage.fingerprint_state(f"{dataset}_files"))
        changed = fp.hashed + fp.removed
        context.log.info(f"{dataset} root {root}: {fp.files} files, version {fp.version}; "
                         f"{len(fp.hashed)} hashed (new or moved), {len(fp.removed)} removed"
                         + (f", e.g. {', '.join(changed[:5])}" if changed else ""))
        return dg.ObserveResult(data_version=dg.DataVersion(fp.version), metadata={
            "root": dg.MetadataValue.path(str(root)), "files": fp.files, "hashed": len(fp.hashed), "removed": len(fp.removed),
            "changed_files": dg.MetadataValue.json(changed[:100]),
        })

    return observe


def build_source_observations() -> list:
    """One observable source per dataset root (``ptok`` observes them before every run)."""
    return [
        _observed_root("ade20k", "ade20k_root", "Files under the ADE20K root (images, annotations): fingerprint of names, sizes, mtimes; content hash of what changed."),
        _observed_root("lvis", "lvis_root", "LVIS v1 annotation files under the LVIS root."),
        _observed_root("coco", "coco_root", "COCO image files (train2017, val2017, train2014) under the COCO root."),
        _observed_root("refcoco", "refcoco_root", "RefCOCO files (refs(unc).p, instances.json) under the RefCOCO root."),
    ]


def build_source_assets(datasets_settings) -> list[dg.AssetsDefinition]:
    ds = datasets_settings
    # Each source's version folds in only the settings it reads, so editing one dataset's
    # config leaves the other sources fresh.
    ade = {"root": ds.ade20k_root, "splits": ds.ade20k_splits, "max_pixels": ds.max_image_pixels}
    lv = {"root": ds.lvis_root, "coco": ds.coco_root, "splits": ds.lvis_splits, "max_pixels": ds.max_image_pixels}
    ref = {"root": ds.refcoco_root, "coco": ds.coco_root, "max_pixels": ds.max_image_pixels}

    @dg.multi_asset(
        outs=_outs("ade20k_images", "ADE20K (SceneParsing 2016) images with ids, sizes, sha256 and encoded bytes.", code_version("1", ade)),
        deps=["ade20k_files"],
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
        deps=["lvis_files", "coco_files"],
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
        deps=["lvis_files"],
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
        deps=["refcoco_files", "coco_files"],
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
        deps=["refcoco_files"],
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
