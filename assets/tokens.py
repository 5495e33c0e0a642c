"""Perception tokens: box tokens from annotations (here) and depth tokens from the VQ-VAE."""

import dagster as dg

from assets.versioning import code_version
from pipeline_lib.executors import gpu_op_tags
from perception_tokens import schemas
from perception_tokens.datasets.records import Reject
from perception_tokens.vocab import TokenParseError, box_to_grid, encode_box
from pipeline_lib.emit import RejectSink, emit_table
from pipeline_lib.folders import partition_tables, previous_table
from pipeline_lib.incremental import merge_in_order, reusable_rows
from pipeline_lib.resources import StorageResource
from pipeline_lib.tables import TableHandle

GROUP = "tokens"


def _box_rows(rows, *, dataset: str, id_field: str, sink: RejectSink, seen: set):
    for r in rows:
        key = (dataset, r[id_field])
        if key in seen:  # RefCOCO has one row per sentence; a ref has one box
            continue
        seen.add(key)
        try:
            box = box_to_grid([r["bbox_x"], r["bbox_y"], r["bbox_w"], r["bbox_h"]], r["image_width"], r["image_height"])
        except TokenParseError as exc:
            sink.rejects.append(Reject(dataset, "box_tokens", f"image {r['image_id']}", str(r[id_field]), exc.reason).as_row())
            continue
        yield {
            "dataset": dataset, "split": r["split"], "image_id": r["image_id"],
            "annotation_id": r.get("annotation_id", r.get("ann_id")), "ref_id": r.get("ref_id"),
            "category_id": r["category_id"], "category_name": r["category_name"],
            "image_width": r["image_width"], "image_height": r["image_height"],
            "x1": box.x1, "y1": box.y1, "x2": box.x2, "y2": box.y2, "box_tokens": encode_box(box),
        }


def build_box_token_assets() -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        outs={
            "box_tokens": dg.AssetOut(
                description="LVIS instances and RefCOCO referred objects as `(<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>)` "
                "on the 336x336 grid, clamped; one row per object.",
                code_version=code_version("1"), kinds={"parquet"}, group_name=GROUP,
            ),
            "box_tokens_rejects": dg.AssetOut(
                description="Boxes that collapse on the 336 grid or lie outside their image.",
                code_version=code_version("1"), kinds={"parquet"}, group_name=GROUP,
            ),
        },
        ins={"lvis_instances": dg.AssetIn(), "refcoco_refs": dg.AssetIn()},
        can_subset=False,
    )
    def box_tokens(context: dg.AssetExecutionContext, storage: StorageResource, lvis_instances: TableHandle, refcoco_refs: TableHandle):
        sink = RejectSink()
        seen: set = set()

        def rows():
            yield from _box_rows(lvis_instances.iter_rows(), dataset="lvis", id_field="annotation_id", sink=sink, seen=seen)
            # RefCOCO's boxes only (Aurora's grounding data); RefCOCO+/g ref ids overlap RefCOCO's
            yield from _box_rows((r for r in refcoco_refs.iter_rows() if r["dataset"] == "refcoco"), dataset="refcoco", id_field="ref_id", sink=sink, seen=seen)

        out = emit_table(context, storage, schemas.BOX_TOKEN_SCHEMA, rows(), output_name="box_tokens")
        return out, sink.emit(context, storage, "box_tokens_rejects")

    return [box_tokens]


def build_depth_token_assets(settings, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    vq = settings.vqvae
    engine = settings.execution.engine_settings()  # where the encoding runs; not in the version: same rows either way

    @dg.asset(
        description="100 VQ-VAE codes per image (row-major 10x10) and the token string "
        "`<DEPTH_START><DEPTH_k>...<DEPTH_END>`; incremental by image sha256, teacher and VQ-VAE weights.",
        code_version=code_version("1", {"batch": vq.extract_batch_size}),
        kinds={"parquet", "pytorch"},
        group_name=GROUP,
        partitions_def=partitions,
        ins={"pseudo_depth": dg.AssetIn(), "depth_vqvae": dg.AssetIn()},
        pool="accelerator",
        op_tags=gpu_op_tags(settings.execution),
    )
    def depth_tokens(context: dg.AssetExecutionContext, storage: StorageResource, pseudo_depth: TableHandle, depth_vqvae: TableHandle):
        import numpy as np
        from tqdm.auto import tqdm

        from perception_tokens.depth import decode_png
        from perception_tokens.vocab import encode_depth
        from training.vqvae import load_vqvae
        from training.vqvae.on_engine import code_batches

        manifest = depth_vqvae.read().to_pylist()[0]
        vq_version = manifest["model_id"]
        model = load_vqvae(manifest["path"])
        current = {r["image_id"]: (r["image_sha256"], r["teacher"]) for r in pseudo_depth.iter_rows(columns=["image_id", "image_sha256", "teacher"])}
        # the partition's last version: rows still valid for these maps and these VQ-VAE weights are kept
        previous = previous_table(storage.root, "depth_tokens", partitions, context.partition_key)
        reused = reusable_rows(previous, lambda r: r["vqvae_version"] == vq_version
                               and current.get(r["image_id"]) == (r["image_sha256"], r["teacher"]))
        todo_rows: list[dict] = []

        def maps():
            for row in pseudo_depth.iter_rows(columns=["dataset", "split", "image_id", "image_sha256", "teacher", "depth_png"]):
                if row["image_id"] in reused:
                    continue
                todo_rows.append({k: row[k] for k in ("dataset", "split", "image_id", "image_sha256", "teacher")})
                yield decode_png(row["depth_png"])

        def encoded():
            with tqdm(total=len(current) - len(reused), unit="img", desc="depth tokens") as bar:
                for codes in code_batches(engine, manifest["path"], maps(), batch_size=vq.extract_batch_size, model=model):
                    batch_meta, todo_rows[:] = todo_rows[: len(codes)], todo_rows[len(codes):]
                    for meta, c in zip(batch_meta, codes):
                        yield {**meta, "vqvae_version": vq_version, "codes": c.astype(np.int16).tolist(),
                               "depth_tokens": encode_depth(c.tolist())}
                    bar.update(len(codes))

        context.log.info(f"{len(current)} maps: {len(reused)} reused, {len(current) - len(reused)} to encode with VQ-VAE {vq_version}")
        # rows in pseudo_depth's order, reused or not, so an incremental run writes what a clean run writes
        rows = merge_in_order(current, reused, encoded())
        return emit_table(context, storage, schemas.DEPTH_TOKEN_SCHEMA, rows,
                          metadata={"vqvae_version": dg.MetadataValue.text(vq_version), "reused": dg.MetadataValue.int(len(reused))})

    @dg.asset_check(asset=depth_tokens, description="Every token string (all partitions written so far) parses back to exactly its 100 codes, all in 0..127.")
    def depth_tokens_parse(storage: StorageResource) -> dg.AssetCheckResult:
        from perception_tokens.vocab import decode_depth

        # a check is not partitioned: read whichever partitions exist rather than demand all
        written = partition_tables(storage.root, "depth_tokens", partitions)
        bad, n = 0, 0
        for r in written.iter_rows(columns=["codes", "depth_tokens"]):
            n += 1
            try:
                bad += decode_depth(r["depth_tokens"]) != list(r["codes"])
            except TokenParseError:
                bad += 1
        return dg.AssetCheckResult(passed=bad == 0 and n > 0, metadata={"rows": n, "bad": bad, "partitions": len(written.paths)})

    return [depth_tokens], [depth_tokens_parse]
