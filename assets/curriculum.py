"""Curriculum stage: marked-point images, then task pools ordered by the schedule, as
Parquet (one row per sample, training order) and as LLaVA JSON with an image folder."""

import json
import shutil
import uuid
from functools import partial
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import dagster as dg
import numpy as np

from assets.versioning import code_version
from perception_tokens import aurora_marks, schemas
from perception_tokens.curriculum import aurora_pools
from perception_tokens.curriculum.aurora_reference import sequential_epochs
from perception_tokens.curriculum import pools as P
from perception_tokens.curriculum.llava_json import validate_answer_tokens, write_llava_json
from perception_tokens.curriculum.schedules import aurora_schedule, annealed_schedule, mix_by_epoch, plot_mix_by_epoch
from perception_tokens.datasets.records import Reject
from perception_tokens.depth import decode_png
from perception_tokens.curriculum.marking import MarkingOptions, MarkingWorker, to_grid
from perception_tokens.engine import map_batches
from perception_tokens.buckets import hash_bucket
from pipeline_lib.emit import RejectSink, emit_table
from pipeline_lib.metadata import image_grid_markdown, png_markdown
from pipeline_lib.resources import StorageResource
from pipeline_lib.tables import TableHandle

GROUP = "curriculum"
IMAGE_TABLES = {"ade20k": "ade20k_images", "lvis": "lvis_images", "refcoco": "refcoco_images"}


def build_curriculum_assets(settings) -> tuple[list, list]:
    cur = settings.curriculum
    aurora_style = cur.style == "aurora"
    # the reference marks ADE20K images only (add_marks_ade.ipynb), at most marked_max_images of them
    marked_datasets = ("ade20k",) if aurora_style else ("ade20k", "lvis", "refcoco")
    engine = settings.execution.engine_settings()  # where the marking runs; not in the version: same rows either way
    opts = MarkingOptions(seed=cur.seed, min_points=cur.min_points, max_points=cur.max_points, variants=tuple(cur.variants),
                          style="aurora" if aurora_style else "project")

    @dg.multi_asset(
        outs={
            "marked_points": dg.AssetOut(
                description="Images resized to 336x336 with 2-5 BLINK-style markers (red circle, letter in a white box) at "
                "points of clearly different depth, and the answer to 'which point is closest to the camera?'.",
                code_version=code_version("1", cur.marked_fraction, cur.min_points, cur.max_points, cur.variants, cur.seed,
                                           *((cur.style, cur.marked_max_images) if aurora_style else ())),
                kinds={"parquet", "opencv"}, group_name=GROUP),
            "marked_points_rejects": dg.AssetOut(
                description="Sampled images where no valid set of points exists (e.g. flat depth).",
                code_version=code_version("1"), kinds={"parquet"}, group_name=GROUP),
        },
        ins={"pseudo_depth": dg.AssetIn(), **{name: dg.AssetIn(table) for name, table in IMAGE_TABLES.items()}},
        can_subset=False,
    )
    def marked_points(context: dg.AssetExecutionContext, storage: StorageResource, pseudo_depth: TableHandle,
                      ade20k: TableHandle, lvis: TableHandle, refcoco: TableHandle):
        chosen = {}
        for r in pseudo_depth.iter_rows(columns=["dataset", "image_id", "depth_png"]):
            if r["dataset"] in marked_datasets and hash_bucket("marked:" + r["image_id"], 10_000) < cur.marked_fraction * 10_000:
                chosen[(r["dataset"], r["image_id"])] = r["depth_png"]
        if cur.marked_max_images is not None and len(chosen) > cur.marked_max_images:
            keep = sorted(chosen, key=lambda k: hash_bucket("marked-order:" + k[1], 2**31 - 1))[: cur.marked_max_images]
            chosen = {k: chosen[k] for k in keep}
        sink = RejectSink()
        examples = []

        def chosen_images():
            for dataset, table in (("ade20k", ade20k), ("lvis", lvis), ("refcoco", refcoco)):
                for img in table.iter_rows(columns=["image_id", "split", "image_bytes"]):
                    key = (dataset, img["image_id"])
                    if key in chosen:
                        yield dataset, img, chosen.pop(key)

        def rows():
            # The per-image work runs on execution.engine (in-process or Ray); rows come back in input order.
            for outcomes in map_batches(partial(MarkingWorker, opts), chosen_images(), batch_size=16, engine=engine):
                for dataset, image_id, row in outcomes:
                    if isinstance(row, str):
                        sink.rejects.append(Reject(dataset, "marked_points", image_id, image_id, row).as_row())
                        continue
                    if len(examples) < 4:
                        examples.append((f"{image_id} -> {row['answer']}", row["marked_png"]))
                    yield row

        out = emit_table(context, storage, schemas.MARKED_POINTS_SCHEMA, rows(), output_name="marked_points")
        out = out.with_metadata({**out.metadata, "examples": dg.MetadataValue.md(image_grid_markdown([examples], width=200))})
        return out, sink.emit(context, storage, "marked_points_rejects")

    @dg.asset_check(asset="marked_points", description="Stored answers agree with the depth map at the stored points; all labels lie inside the image.",
                    additional_ins={"pseudo_depth": dg.AssetIn()})
    def marked_points_consistent(marked_points: TableHandle, pseudo_depth: TableHandle) -> dg.AssetCheckResult:
        marks = {(r["dataset"], r["image_id"]): r for r in marked_points.iter_rows(columns=["dataset", "image_id", "xs", "ys", "answer", "letters", "labels_inside"])}
        wrong, outside, n = 0, 0, 0
        for r in pseudo_depth.iter_rows(columns=["dataset", "image_id", "depth_png"]):
            m = marks.get((r["dataset"], r["image_id"]))
            if m is None:
                continue
            n += 1
            depth = aurora_marks.depth_array(r["depth_png"]) if aurora_style else to_grid(decode_png(r["depth_png"]), cv2.INTER_LINEAR)
            values = [int(depth[y, x]) for x, y in zip(m["xs"], m["ys"])]
            wrong += m["letters"][int(np.argmax(values))] != m["answer"]
            outside += not m["labels_inside"]
        # the reference draws labels 25 px above the point without moving them, so some leave the image
        return dg.AssetCheckResult(passed=n > 0 and wrong == 0 and (aurora_style or outside == 0),
                                   metadata={"checked": n, "wrong_answers": wrong, "labels_outside": outside})

    def project_pools_of(pools, formats, codes_by_image, depth_tokens, marked_points, box_tokens, lvis_images, refcoco_refs, pseudo_depth):
        """The project's pools: every task on every usable image; atomic and reasoning lists by task name."""
        P.add_depth_tasks(pools, depth_tokens.iter_rows(columns=["dataset", "image_id", "codes", "vqvae_version"]), formats)
        P.add_marked_tasks(pools, marked_points.iter_rows(columns=["marked_id", "dataset", "image_id", "letters", "xs", "ys", "depth_values"]),
                           codes_by_image, bottleneck=cur.bottleneck)
        P.add_count_tasks(pools, box_tokens.iter_rows(), lvis_images.iter_rows(columns=["image_id", "neg_category_names", "not_exhaustive_category_ids"]),
                          cur.seed, formats)
        depth336 = {r["image_id"]: to_grid(decode_png(r["depth_png"]), cv2.INTER_LINEAR)
                    for r in pseudo_depth.iter_rows(columns=["dataset", "image_id", "depth_png"]) if r["dataset"] == "refcoco"}
        box_by_ref = {int(b["ref_id"]): b for b in box_tokens.iter_rows() if b["dataset"] == "refcoco"}
        P.add_ground_tasks(pools, refcoco_refs.iter_rows(), box_by_ref, depth336, codes_by_image, formats, cur.seed, cur.ground_pairs_per_image)
        pools.keep_only(cur.tasks)
        return pools.atomic, pools.reasoning

    def aurora_pools_of(pools, formats, codes_by_image, depth_tokens, marked_points, box_tokens, lvis_images):
        """The notebooks' pools, in their order: depth atomic on ADE20K (ADE_codes), per marked image direct then
        CoT; counting from the selected LVIS images (atomic set and CoT set disjoint). Grounding has no reference."""
        skipped = {}
        if {"depth_atomic"} & set(cur.tasks):
            P.add_depth_tasks(pools, (r for r in depth_tokens.iter_rows(columns=["dataset", "image_id", "codes", "vqvae_version"])
                                      if r["dataset"] == "ade20k"), formats)
        depth_reasoning = aurora_pools.depth_reasoning(
            marked_points.iter_rows(columns=["marked_id", "dataset", "image_id", "letters", "xs", "ys", "depth_values"]),
            codes_by_image, skipped)
        count_atomic, count_reasoning = [], []
        if {"count_atomic", "count_cot", "count_direct"} & set(cur.tasks):
            count_atomic, count_reasoning = aurora_pools.count_pools(
                lvis_images.iter_rows(columns=["image_id", "neg_category_ids", "neg_category_names", "not_exhaustive_category_ids"]),
                box_tokens.iter_rows(), formats, seed=cur.seed, n_atomic=cur.count_atomic_images, n_cot=cur.count_cot_images,
                max_per_count=cur.max_per_count, ids_dir=settings.resolve(cur.count_image_ids),
                plurals=aurora_pools.load_plurals(settings.resolve(cur.plurals_file)), skipped=skipped)
        for task, reasons in skipped.items():
            for reason, n in reasons.items():
                pools.skipped[task][reason] += n
        for s in count_atomic + depth_reasoning + count_reasoning:
            pools.samples[s.task].append(s)
        pools.keep_only(cur.tasks)
        wanted = set(cur.tasks)
        atomic = [s for t in ("depth_atomic",) if t in wanted for s in pools.samples.get(t, [])] + \
                 [s for s in count_atomic if "count_atomic" in wanted]
        reasoning = [s for s in depth_reasoning + count_reasoning if s.task in wanted]
        return atomic, reasoning

    @dg.asset(
        description="The training curriculum: task pools (depth/count/grounding; atomic, CoT, direct) ordered by the "
        "schedule (Aurora's annealed atomic share, or the paper's temperature schedule). One row per sample in training "
        "order with lineage ids; a LLaVA JSON and its image folder are exported beside it.",
        code_version=code_version("1", cur),
        kinds={"parquet", "json"},
        group_name=GROUP,
        ins={"depth_tokens": dg.AssetIn(), "box_tokens": dg.AssetIn(), "marked_points": dg.AssetIn(), "lvis_images": dg.AssetIn(),
             "refcoco_refs": dg.AssetIn(), "pseudo_depth": dg.AssetIn(), "ade20k_images": dg.AssetIn(), "refcoco_images": dg.AssetIn()},
    )
    def curriculum(context: dg.AssetExecutionContext, storage: StorageResource, depth_tokens: TableHandle, box_tokens: TableHandle,
                   marked_points: TableHandle, lvis_images: TableHandle, refcoco_refs: TableHandle, pseudo_depth: TableHandle,
                   ade20k_images: TableHandle, refcoco_images: TableHandle):
        tables = {"ade20k": ade20k_images, "lvis": lvis_images, "refcoco": refcoco_images}
        formats = {(d, r["image_id"]): r["format"] for d, t in tables.items() for r in t.iter_rows(columns=["image_id", "format"])}
        codes_by_image = {(r["dataset"], r["image_id"]): (list(r["codes"]), r["vqvae_version"])
                          for r in depth_tokens.iter_rows(columns=["dataset", "image_id", "codes", "vqvae_version"])}
        pools = P.Pools()
        if aurora_style:
            atomic, reasoning = aurora_pools_of(pools, formats, codes_by_image, depth_tokens, marked_points, box_tokens, lvis_images)
        else:
            atomic, reasoning = project_pools_of(pools, formats, codes_by_image, depth_tokens, marked_points, box_tokens,
                                                 lvis_images, refcoco_refs, pseudo_depth)
        context.log.info(f"pools: {pools.counts()}; skipped: { {t: dict(v) for t, v in pools.skipped.items()} }")

        if cur.schedule == "aurora" and cur.mixing == "sequential":
            schedule = sequential_epochs(atomic, reasoning, total_length=cur.epoch_size or len(atomic),
                                         percents=cur.percents, epochs=cur.epochs, seed=cur.seed)
        elif cur.schedule == "aurora":
            schedule = aurora_schedule(atomic, reasoning, epochs=cur.epochs, percents=cur.percents,
                                       epoch_size=cur.epoch_size, seed=cur.seed)
        else:
            by_task = {t: v for t, v in pools.samples.items() if v}
            total = cur.total_samples or cur.epochs * max(1, len(atomic))
            schedule = annealed_schedule(by_task, {t: cur.difficulties[t] for t in by_task}, total, cur.tau0, cur.lam,
                                         seed=cur.seed, epochs=cur.epochs, temperature_form=cur.temperature_form)

        # export the LLaVA JSON and every image it names into a fresh folder, then swap it in
        export = Path(storage.local_files_dir("curriculum"))
        final, tmp = export / "llava", export / f".llava-{uuid.uuid4().hex}"
        (tmp / "images" / "marked").mkdir(parents=True)
        needed = {(s.image.dataset, s.image.image_id): s.image.file_name for _, s in schedule if not s.image.file_name.startswith("marked/")}
        for dataset, table in tables.items():
            for r in table.iter_rows(columns=["image_id", "image_bytes"]):
                name = needed.get((dataset, r["image_id"]))
                if name:
                    (tmp / "images" / name).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / "images" / name).write_bytes(r["image_bytes"])
        marked_needed = {s.image.file_name for _, s in schedule if s.image.file_name.startswith("marked/")}
        for r in marked_points.iter_rows(columns=["marked_id", "marked_png"]):
            name = P.marked_image_file(r["marked_id"])
            if name in marked_needed:
                (tmp / "images" / name).write_bytes(r["marked_png"])
        from perception_tokens.curriculum.llava_json import to_llava_record

        records = [{**to_llava_record(s), "id": f"{s.sample_id}#{i}"} for i, (_, s) in enumerate(schedule)]
        write_llava_json(records, tmp / "curriculum.json", **({"indent": 2, "ensure_ascii": True} if aurora_style else {}))
        old = export / f".old-{uuid.uuid4().hex}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

        mix = mix_by_epoch(schedule)
        counts = Counter(s.task for _, s in schedule)
        example = records[0]["conversations"] if records else []
        meta = {
            "llava_json": dg.MetadataValue.path(str(final / "curriculum.json")),
            "image_folder": dg.MetadataValue.path(str(final / "images")),
            "samples_per_task": dg.MetadataValue.json(dict(counts)),
            "pool_sizes": dg.MetadataValue.json(pools.counts()),
            "skipped": dg.MetadataValue.json({t: dict(v) for t, v in pools.skipped.items()}),
            "mix_by_epoch": dg.MetadataValue.md(png_markdown(plot_mix_by_epoch(mix), "task mix by epoch")),
            "first_sample": dg.MetadataValue.json(example),
        }
        return emit_table(context, storage, schemas.CURRICULUM_SCHEMA, P.schedule_rows(schedule), config=cur.model_dump(), metadata=meta)

    @dg.asset_check(asset=curriculum, description="Every perception-token string in every answer parses under the vocabulary.")
    def curriculum_tokens_parse(curriculum: TableHandle) -> dg.AssetCheckResult:
        bad, n, first = 0, 0, None
        for r in curriculum.iter_rows(columns=["sample_id", "answer"]):
            n += 1
            problems = validate_answer_tokens(r["answer"])
            if problems:
                bad += 1
                first = first or f"{r['sample_id']}: {problems[0]}"
        return dg.AssetCheckResult(passed=bad == 0 and n > 0, metadata={"samples": n, "bad": bad, "first_problem": first or ""})

    @dg.asset_check(asset=curriculum, description="Every image the LLaVA JSON names exists in the exported image folder.")
    def curriculum_images_resolve(storage: StorageResource, curriculum: TableHandle) -> dg.AssetCheckResult:
        folder = Path(storage.local_files_dir("curriculum")) / "llava" / "images"
        names = {r["image_file"] for r in curriculum.iter_rows(columns=["image_file"])}
        missing = sorted(n for n in names if not (folder / n).is_file())
        return dg.AssetCheckResult(passed=not missing and bool(names), metadata={"images": len(names), "missing": len(missing),
                                                                                 "first_missing": missing[0] if missing else ""})

    @dg.asset_check(asset=curriculum, description="For Aurora's schedule, each epoch's atomic share matches curriculum.percents within the tolerance.")
    def curriculum_mix_matches_schedule(curriculum: TableHandle) -> dg.AssetCheckResult:
        per_epoch: dict[int, Counter] = defaultdict(Counter)
        for r in curriculum.iter_rows(columns=["epoch", "kind"]):
            per_epoch[r["epoch"]][r["kind"] == "atomic"] += 1
        shares = {e: c[True] / max(1, sum(c.values())) for e, c in sorted(per_epoch.items())}
        if cur.schedule != "aurora":
            return dg.AssetCheckResult(passed=bool(shares), metadata={"atomic_share": dg.MetadataValue.json(shares)})
        if cur.mixing == "sequential":
            # the notebooks' block: epoch e holds exactly int(N * percents[e]) atomic samples, N = the epoch-0 size
            atomic = {e: c[True] for e, c in sorted(per_epoch.items())}
            n = cur.epoch_size or atomic.get(0, 0)
            expected = {e: int(n * cur.percents[e]) for e in range(cur.epochs)}
            return dg.AssetCheckResult(passed=atomic == {e: v for e, v in expected.items() if v or e in atomic},
                                       metadata={"atomic_per_epoch": dg.MetadataValue.json({str(k): v for k, v in atomic.items()}),
                                                 "expected": dg.MetadataValue.json({str(k): v for k, v in expected.items()})})
        worst = max((abs(shares[e] - cur.percents[e]) for e in shares), default=1.0)
        return dg.AssetCheckResult(passed=worst <= cur.mix_tolerance and len(shares) == cur.epochs,
                                   metadata={"atomic_share": dg.MetadataValue.json({str(k): round(v, 4) for k, v in shares.items()}),
                                             "max_deviation": float(worst)})

    return [marked_points, curriculum], [marked_points_consistent, curriculum_tokens_parse, curriculum_images_resolve, curriculum_mix_matches_schedule]
