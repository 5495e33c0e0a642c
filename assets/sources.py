"""Source assets: images and annotations read from ADE20K, LVIS v1 and RefCOCO roots.

Each asset writes its table and a ``<asset>_rejects`` table (file, id, reason, stage), so
a bad record never stops the run and never vanishes. A missing or malformed annotation
file fails the asset with the reader's message (file and problem).
"""


import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import dagster as dg

from assets.versioning import code_version
from perception_tokens import schemas
from perception_tokens.buckets import bucket_digests
from perception_tokens.datasets import ade20k, lvis, refcoco
from pipeline_lib.emit import RejectSink, emit_table
from pipeline_lib.file_fingerprint import Fingerprint, fingerprint_tree
from pipeline_lib.resources import DatasetsResource, StorageResource

GROUP = "sources"
KINDS = {"parquet", "python"}


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


UNUSED = "unused"  # the data version of an optional dataset's root that is not set


def root_fingerprint(datasets: DatasetsResource, storage: StorageResource, dataset: str, *,
                     record: bool = True) -> tuple[Path | None, Fingerprint | None]:
    """The root of ``dataset`` and its fingerprint, or ``(None, None)`` for an optional dataset
    that is not used. ``record=False`` leaves the per-file state as it was (a look, not an observation)."""
    root = getattr(datasets, f"{dataset}_root")
    if root is None:
        return None, None
    return Path(root), fingerprint_tree(Path(root), storage.fingerprint_state(f"{dataset}_files"), record=record)


def current_root_version(source: str, datasets: DatasetsResource, storage: StorageResource) -> str | None:
    """The data version an observation of source asset ``source`` (``<dataset>_files``) would record
    now, computed without recording anything; None for an asset that is not a dataset root."""
    dataset = source.removesuffix("_files")
    if source == dataset or dataset not in OBSERVED_DATASETS:
        return None
    _, fp = root_fingerprint(datasets, storage, dataset, record=False)
    return UNUSED if fp is None else fp.version


def _observed_root(dataset: str, description: str):
    """An observable source asset whose data version is the fingerprint of one dataset root:
    when a file under it is replaced, added or removed, the sources reading it turn stale."""

    # a spec carries the owners: observable_source_asset(owners=...) drops them in dagster 1.13
    @dg.multi_observable_source_asset(
        name=f"observe_{dataset}_files",
        specs=[dg.AssetSpec(f"{dataset}_files", group_name=GROUP, description=description, owners=["team:data"])],
    )
    def observe(context, datasets: DatasetsResource, storage: StorageResource) -> dg.ObserveResult:
        datasets.ensure_demo_data(context.log)  # observe what the sources will read, not an empty folder
        root, fp = root_fingerprint(datasets, storage, dataset)
        if fp is None:  # an optional dataset that is not used
            return dg.ObserveResult(data_version=dg.DataVersion(UNUSED), metadata={"root": "unset (dataset not used)"})
        changed = fp.hashed + fp.removed
        context.log.info(f"{dataset} root {root}: {fp.files} files, version {fp.version}; "
                         f"{len(fp.hashed)} hashed (new or moved), {len(fp.removed)} removed"
                         + (f", e.g. {', '.join(changed[:5])}" if changed else ""))
        for name, why in list(fp.not_read.items())[:20]:  # the source readers reject these with the same reason
            context.log.warning(f"{dataset} root {root}: {name}: {why}")
        return dg.ObserveResult(data_version=dg.DataVersion(fp.version), metadata={
            "root": dg.MetadataValue.path(str(root)), "files": fp.files, "hashed": len(fp.hashed), "removed": len(fp.removed),
            "changed_files": dg.MetadataValue.json(changed[:100]), "not_read": len(fp.not_read),
            "not_read_files": dg.MetadataValue.json(dict(list(fp.not_read.items())[:100])),
        })

    return observe


# the datasets whose roots are observable sources (``<dataset>_files``), each read through ``DatasetsResource.<dataset>_root``
OBSERVED_DATASETS = ("ade20k", "lvis", "coco", "refcoco", "refcoco_plus", "refcocog")


def build_source_observations() -> list:
    """One observable source per dataset root (``ptok`` observes them before every run)."""
    return [
        _observed_root("ade20k", "Files under the ADE20K root (images, annotations): fingerprint of names, sizes, mtimes; content hash of what changed."),
        _observed_root("lvis", "LVIS v1 annotation files under the LVIS root."),
        _observed_root("coco", "COCO image files (train2017, val2017, train2014) under the COCO root."),
        _observed_root("refcoco", "RefCOCO files (refs(unc).p, instances.json) under the RefCOCO root."),
        _observed_root("refcoco_plus", "RefCOCO+ files (refs(unc).p, instances.json) under the RefCOCO+ root "
                       "(none observed unless datasets.refer_datasets has refcoco+ or its root is set)."),
        _observed_root("refcocog", "RefCOCOg files (refs(umd).p, instances.json) under the RefCOCOg root "
                       "(none observed unless datasets.refer_datasets has refcocog or its root is set)."),
    ]


def _source_asset(name: str, description: str, version: str, deps: list[str], schema,
                  read: Callable[[DatasetsResource], Iterable], config: Callable[[DatasetsResource], dict],
                  shards: int | None = None) -> dg.AssetsDefinition:
    """One source table and its rejects: ``read(datasets)`` yields rows and Reject records.

    With ``shards`` (the image tables), the materialization also records ``shard_digests``: a
    digest of (image_id, sha256) per ``pseudo_depth`` shard, so declarative automation can tell
    which shards an added or replaced image reaches (pipelines/automation_conditions.py)."""

    @dg.multi_asset(name=name, outs=_outs(name, description, version), deps=deps, can_subset=False)
    def source(context: dg.AssetExecutionContext, storage: StorageResource, datasets: DatasetsResource):
        datasets.ensure_demo_data(context.log)
        sink = RejectSink()
        seen: list[tuple[str, str]] = []
        rows = sink.rows(read(datasets))
        if shards:
            rows = _tap_image_hashes(rows, seen)
        out = emit_table(context, storage, schema, rows, output_name=name, config=config(datasets))
        if shards:  # emit_table has consumed the rows, so ``seen`` is complete
            out = out.with_metadata({**out.metadata, SHARD_DIGESTS: dg.MetadataValue.json(
                {"num_shards": shards, "by_shard": bucket_digests(seen, shards)})})
        return out, sink.emit(context, storage, f"{name}_rejects")

    return source


SHARD_DIGESTS = "shard_digests"  # metadata key read by pipelines/automation_conditions.py


def _tap_image_hashes(rows: Iterable[dict], seen: list[tuple[str, str]]) -> Iterator[dict]:
    for row in rows:
        seen.append((row["image_id"], row["sha256"]))
        yield row


def _lvis_split_indexes(datasets: DatasetsResource) -> Iterator[tuple[str, dict]]:
    # read lazily, one split after the other, as the rows stream
    for split in datasets.lvis_splits:
        yield split, lvis.read_lvis_annotations(Path(datasets.lvis_root) / f"lvis_v1_{split}.json")


def _refcoco_index(datasets: DatasetsResource):
    root = Path(datasets.refcoco_root)
    return refcoco.read_refcoco(root / "refs(unc).p", root / "instances.json")


_REFER_ROOT_ATTR = {"refcoco": "refcoco_root", "refcoco+": "refcoco_plus_root", "refcocog": "refcocog_root"}


def _refer_refs(datasets: DatasetsResource) -> Iterator:
    """The refs of every dataset in ``refer_datasets``, one after the other (``dataset`` tells them apart)."""
    for dataset in datasets.refer_datasets:
        yield from refcoco.iter_refcoco_refs(refcoco.read_refer_dataset(getattr(datasets, _REFER_ROOT_ATTR[dataset]), dataset))


_REFER_FILES = {"refcoco": "refcoco_files", "refcoco+": "refcoco_plus_files", "refcocog": "refcocog_files"}


def _refer_images(datasets: DatasetsResource) -> Iterator:
    """The COCO images of every dataset in ``refer_datasets``, each image once (the three share COCO
    train2014; RefCOCOg's umd split refers to images RefCOCO never does, and Perceptio trains on them).
    The first dataset listing an image gives its row; a later set does not open it again."""
    seen: set[str] = set()
    for dataset in ("refcoco", *[d for d in datasets.refer_datasets if d != "refcoco"]):
        index = _refcoco_index(datasets) if dataset == "refcoco" else \
            refcoco.read_refer_dataset(getattr(datasets, _REFER_ROOT_ATTR[dataset]), dataset)
        # an image an earlier set has read is not opened again
        index = dataclasses.replace(index, images=[img for img in index.images if str(img.get("id")) not in seen])
        for item in refcoco.iter_refcoco_images(index, Path(datasets.coco_root), max_pixels=datasets.max_image_pixels):
            if isinstance(item, dict):
                seen.add(item["image_id"])
            elif item.record_id in seen:
                continue
            yield item


def build_source_assets(datasets_settings) -> list[dg.AssetsDefinition]:
    settings = datasets_settings
    shards = settings.num_shards  # only for the shard digests in the metadata: not part of any version
    # Each source's version folds in only the settings it reads, so editing one dataset's
    # config leaves the other sources fresh.
    ade20k_inputs = {"root": settings.ade20k_root, "splits": settings.ade20k_splits, "max_pixels": settings.max_image_pixels}
    lvis_inputs = {"root": settings.lvis_root, "coco": settings.coco_root, "splits": settings.lvis_splits, "max_pixels": settings.max_image_pixels}
    refcoco_inputs = {"root": settings.refcoco_root, "coco": settings.coco_root, "max_pixels": settings.max_image_pixels}
    # refcoco_images also holds the images of the other referring sets when they are read (RefCOCO alone: as before,
    # so its version and its inputs do not move)
    more_refer = [d for d in settings.refer_datasets if d != "refcoco"]
    if more_refer:
        refcoco_inputs["more_refer"] = {d: getattr(settings, _REFER_ROOT_ATTR[d]) for d in more_refer}
    refer_inputs = {"datasets": settings.refer_datasets,
                    **{n: getattr(settings, _REFER_ROOT_ATTR[n]) for n in settings.refer_datasets}}
    return [
        _source_asset(
            "ade20k_images", "ADE20K (SceneParsing 2016) images with ids, sizes, sha256 and encoded bytes.",
            code_version("1", ade20k_inputs), ["ade20k_files"], schemas.ADE20K_IMAGE_SCHEMA,
            read=lambda d: ade20k.iter_ade20k_images(Path(d.ade20k_root), splits=tuple(d.ade20k_splits), max_pixels=d.max_image_pixels),
            config=lambda d: {"root": d.ade20k_root, "splits": d.ade20k_splits}, shards=shards,
        ),
        _source_asset(
            "lvis_images", "LVIS v1 images (COCO 2017 files) with negative / not-exhaustive category lists.",
            code_version("1", lvis_inputs), ["lvis_files", "coco_files"], schemas.LVIS_IMAGE_SCHEMA,
            read=lambda d: (row for split, index in _lvis_split_indexes(d)
                            for row in lvis.iter_lvis_images(index, Path(d.coco_root), split, max_pixels=d.max_image_pixels)),
            config=lambda d: {"lvis_root": d.lvis_root, "coco_root": d.coco_root, "splits": d.lvis_splits}, shards=shards,
        ),
        _source_asset(
            "lvis_instances", "LVIS v1 annotations, one row per instance: ids, category, bbox, area, exhaustiveness.",
            code_version("1", {k: lvis_inputs[k] for k in ("root", "splits")}), ["lvis_files"], schemas.LVIS_INSTANCE_SCHEMA,
            read=lambda d: (row for split, index in _lvis_split_indexes(d) for row in lvis.iter_lvis_instances(index, split)),
            config=lambda d: {"lvis_root": d.lvis_root, "splits": d.lvis_splits},
        ),
        _source_asset(
            "refcoco_images", "RefCOCO (UNC) images (COCO train2014 files) referred to by expressions; with "
            "datasets.refer_datasets, also those of RefCOCO+ / RefCOCOg, each image once.",
            code_version("1", refcoco_inputs), ["refcoco_files", "coco_files", *(_REFER_FILES[d] for d in more_refer)],
            schemas.REFCOCO_IMAGE_SCHEMA, read=_refer_images,
            config=lambda d: {"refcoco_root": d.refcoco_root, "coco_root": d.coco_root,
                              **{_REFER_ROOT_ATTR[n]: getattr(d, _REFER_ROOT_ATTR[n]) for n in d.refer_datasets if n != "refcoco"}},
            shards=shards,
        ),
        _source_asset(
            "refcoco_refs", "RefCOCO (and, per datasets.refer_datasets, RefCOCO+ / RefCOCOg) referring expressions, "
            "one row per sentence, with the referred box and mask (RLE); `dataset` says which set.",
            code_version("2", refer_inputs), ["refcoco_files", "refcoco_plus_files", "refcocog_files"], schemas.REFCOCO_REF_SCHEMA,
            read=_refer_refs,
            config=lambda d: {"refer_datasets": list(d.refer_datasets),
                              **{_REFER_ROOT_ATTR[n]: getattr(d, _REFER_ROOT_ATTR[n]) for n in d.refer_datasets}},
        ),
    ]
