"""``pseudo_depth``: every image gets a depth map from the configured teacher.

Partitioned by dataset x shard so shards run in parallel (multiprocess executor here,
separate jobs at scale). Incremental: rows whose image sha256 and teacher identity match
the partition's previous version are carried over instead of recomputed.
"""

import time

import cv2
import dagster as dg

from assets.versioning import code_version
from pipeline_lib.executors import gpu_op_tags
from perception_tokens import schemas
from perception_tokens.datasets.records import Reject
from perception_tokens.depth import decode_png
from perception_tokens.images import BadImageError, decode_rgb
from perception_tokens.buckets import bucket_digest, hash_bucket
from pipeline_lib.emit import RejectSink, emit_table
from pipeline_lib.folders import previous_table
from pipeline_lib.incremental import merge_in_order, reusable_rows
from pipeline_lib.metadata import image_grid_markdown
from pipeline_lib.resources import DepthTeacherResource, StorageResource
from pipeline_lib.tables import TableHandle

DATASETS = ["ade20k", "lvis", "refcoco"]
INPUT_SHARD_DIGEST = "input_shard_digest"
GROUP = "depth"


def depth_partitions(num_shards: int) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {"dataset": dg.StaticPartitionsDefinition(DATASETS), "shard": dg.StaticPartitionsDefinition([str(i) for i in range(num_shards)])}
    )


def build_depth_assets(settings) -> list[dg.AssetsDefinition]:
    partitions = depth_partitions(settings.datasets.num_shards)
    version = code_version("1", settings.depth, {"num_shards": settings.datasets.num_shards})
    engine = settings.execution.engine_settings()  # where the labelling runs; not in the version: same rows either way

    @dg.multi_asset(
        outs={
            "pseudo_depth": dg.AssetOut(
                description="Depth map per image from the depth teacher (Depth Anything or the demo's ground truth): "
                "uint8 PNG, relative inverse depth, larger = nearer; raw min/max kept.",
                code_version=version, kinds={"parquet", "pytorch"}, group_name=GROUP,
            ),
            "pseudo_depth_rejects": dg.AssetOut(
                description="Images the depth teacher could not label, with the reason.",
                code_version=version, kinds={"parquet"}, group_name=GROUP,
            ),
        },
        ins={name: dg.AssetIn(f"{name}_images") for name in DATASETS},
        partitions_def=partitions,
        can_subset=False,
        pool="accelerator",
        op_tags=gpu_op_tags(settings.execution),
    )
    def pseudo_depth(context: dg.AssetExecutionContext, storage: StorageResource, depth_teacher: DepthTeacherResource,
                     ade20k: TableHandle, lvis: TableHandle, refcoco: TableHandle):
        keys = context.partition_key.keys_by_dimension
        dataset, shard = keys["dataset"], int(keys["shard"])
        images = {"ade20k": ade20k, "lvis": lvis, "refcoco": refcoco}[dataset]
        n_shards = len(partitions.get_partitions_def_for_dimension("shard").get_partition_keys())
        teacher = depth_teacher.build()
        context.log.info(f"teacher {teacher.identity}; dataset {dataset} shard {shard}/{n_shards}")

        current = {
            r["image_id"]: r["sha256"]
            for r in images.iter_rows(columns=["image_id", "sha256"])
            if hash_bucket(r["image_id"], n_shards) == shard
        }
        # the partition's last version: rows still valid for these images and this teacher are kept
        previous = previous_table(storage.root, "pseudo_depth", partitions, context.partition_key)
        reused = reusable_rows(previous, lambda r: r["teacher"] == teacher.identity and current.get(r["image_id"]) == r["image_sha256"])
        todo = {k for k in current if k not in reused}
        context.log.info(f"{len(current)} images in shard: {len(reused)} reused, {len(todo)} to label")

        sink = RejectSink()
        meta_by_id: dict[str, dict] = {}

        def items():
            for row in images.iter_rows(columns=["image_id", "split", "sha256", "image_bytes"]):
                if row["image_id"] not in todo:
                    continue
                try:
                    rgb = decode_rgb(row["image_bytes"])
                except BadImageError as exc:
                    sink.rejects.append(Reject(dataset, "pseudo_depth", row["image_id"], row["image_id"], exc.reason).as_row())
                    continue
                meta_by_id[row["image_id"]] = {"split": row["split"], "sha256": row["sha256"]}
                if len(thumbs) < 4:
                    thumbs[row["image_id"]] = _small(cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes())
                yield dataset, row["image_id"], rgb

        def on_reject(ds, image_id, reason):
            sink.rejects.append(Reject(ds, "pseudo_depth", image_id, image_id, reason).as_row())

        samples: list[tuple[str, bytes, bytes]] = []
        thumbs: dict[str, bytes] = {}
        timing = {"seconds": 0.0, "n": 0}

        def labelled():
            from perception_tokens.depth.on_engine import label_images_on  # torch: only when labelling

            start = time.perf_counter()
            for res in label_images_on(engine, depth_teacher.factory(), items(), batch_size=depth_teacher.batch_size,
                                       on_reject=on_reject, teacher=teacher, total=len(todo)):
                m = meta_by_id.pop(res.image_id)
                if res.image_id in thumbs:
                    samples.append((res.image_id, thumbs.pop(res.image_id), res.depth_png))
                timing["n"] += 1
                yield {
                    "dataset": res.dataset, "split": m["split"], "image_id": res.image_id, "image_sha256": m["sha256"],
                    "teacher": teacher.identity, "width": res.width, "height": res.height, "depth_png": res.depth_png,
                    "raw_min": res.raw_min, "raw_max": res.raw_max,
                }
            timing["seconds"] = time.perf_counter() - start

        # Rows in the images table's order, reused or not (rejected images are in the sink), so an
        # incremental run writes the same table as a clean run; label_images keeps input order.
        rows = merge_in_order(current, reused, labelled())
        # emit_table consumes rows fully, so timing and samples are filled before metadata is built
        out = emit_table(context, storage, schemas.PSEUDO_DEPTH_SCHEMA, rows, output_name="pseudo_depth",
                         config=depth_teacher.model_dump())
        if todo and timing["n"] == 0:
            # every image failed: that is a broken teacher (missing GPU, bad weights), not bad images
            out.value.discard()
            first = sink.rejects[0]["reason"] if sink.rejects else "no output"
            raise RuntimeError(f"depth teacher {teacher.identity} labelled none of the {len(todo)} images of {dataset} shard {shard}; first error: {first}")
        throughput = timing["n"] / timing["seconds"] if timing["seconds"] > 0 else 0.0
        # the shard of the images table both outputs were made from (compared with the table's
        # shard_digests by pipelines/automation_conditions.py: which shards an image reaches)
        made_from = {INPUT_SHARD_DIGEST: dg.MetadataValue.text(bucket_digest(current.items()))}
        out = out.with_metadata({
            **out.metadata,
            "teacher": dg.MetadataValue.text(teacher.identity),
            "images_labelled": dg.MetadataValue.int(timing["n"]),
            "images_reused": dg.MetadataValue.int(len(reused)),
            "throughput_images_per_s": dg.MetadataValue.float(round(throughput, 2)),
            **made_from,
            "examples": dg.MetadataValue.md(image_grid_markdown(
                [[(f"{i} image", img), ("depth", _small(d))] for i, img, d in samples], width=160)),
        })
        rejects = sink.emit(context, storage, "pseudo_depth_rejects")
        return out, rejects.with_metadata({**rejects.metadata, **made_from})

    return [pseudo_depth]


def _small(png: bytes, width: int = 160) -> bytes:
    img = decode_png(png)
    h, w = img.shape[:2]
    img = cv2.resize(img, (width, max(1, int(h * width / w))), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".png", img)[1].tobytes()

