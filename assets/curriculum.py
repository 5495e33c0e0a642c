"""Curriculum stage: marked-point images, then task pools ordered by the schedule, as
Parquet (one row per sample, training order) and as LLaVA JSON with an image folder.

Roles: this module builds the two assets (marked_points, curriculum) and their pools and
order; ``assets.curriculum_export`` writes the LLaVA export; ``assets.curriculum_checks``
holds the asset checks.
"""

from collections import Counter
from functools import partial

import cv2
import dagster as dg

from assets.curriculum_checks import build_curriculum_checks
from assets.curriculum_export import export_llava
from assets.versioning import code_version
from perception_tokens import schemas
from perception_tokens.curriculum import aurora_pools, perceptio_pools, reference_files
from perception_tokens.curriculum import pools as curriculum_pools
from perception_tokens.curriculum import vpt_pools
from perception_tokens.curriculum.aurora_reference import sequential_epochs
from perception_tokens.curriculum.llava_json import to_llava_record
from perception_tokens.curriculum.marking import MarkingOptions, MarkingWorker, to_grid
from perception_tokens.curriculum.text_coordinates import with_text_coordinates
from perception_tokens.curriculum.schedules import aurora_schedule, annealed_schedule, mix_by_epoch, plot_mix_by_epoch
from perception_tokens.datasets.records import Reject
from perception_tokens.depth import decode_png
from perception_tokens.engine import map_batches
from perception_tokens.buckets import hash_bucket
from pipeline_lib import reference_selections
from pipeline_lib.emit import RejectSink, emit_table
from pipeline_lib.metadata import image_grid_markdown, png_markdown
from pipeline_lib.resources import StorageResource
from pipeline_lib.settings_experiment import variant_asset_name
from pipeline_lib.tables import TableHandle

GROUP = "curriculum"
IMAGE_TABLES = {"ade20k": "ade20k_images", "lvis": "lvis_images", "refcoco": "refcoco_images"}
DEPTH_TOKEN_COLUMNS = ["dataset", "image_id", "codes", "vqvae_version"]
# every LVIS annotation, so a box that box_tokens rejected still counts as an instance (never undercount)
INSTANCE_COLUMNS = ["annotation_id", "image_id", "category_id", "category_name"]
MARKED_COLUMNS = ["marked_id", "dataset", "image_id", "letters", "xs", "ys", "depth_values"]


def choose_marked_images(pseudo_depth: TableHandle, curriculum_settings,
                         reference_ids: set[str] | None = None) -> dict[tuple[str, str], bytes]:
    """(dataset, image_id) -> depth PNG of the images to mark: the ADE20K images of ``reference_ids``
    (the reference's ADE_500files.npy) when given, else a hashed fraction, at most marked_max_images."""
    if reference_ids is not None:
        return {(r["dataset"], r["image_id"]): r["depth_png"] for r in pseudo_depth.iter_rows(columns=["dataset", "image_id", "depth_png"])
                if r["dataset"] == "ade20k" and r["image_id"] in reference_ids}
    aurora_style = curriculum_settings.style == "aurora"
    # the reference marks ADE20K images only (add_marks_ade.ipynb), at most marked_max_images of them
    datasets = ("ade20k",) if aurora_style else ("ade20k", "lvis", "refcoco")
    chosen = {}
    for r in pseudo_depth.iter_rows(columns=["dataset", "image_id", "depth_png"]):
        if r["dataset"] in datasets and hash_bucket("marked:" + r["image_id"], 10_000) < curriculum_settings.marked_fraction * 10_000:
            chosen[(r["dataset"], r["image_id"])] = r["depth_png"]
    limit = curriculum_settings.marked_max_images
    if limit is not None and len(chosen) > limit:
        keep = sorted(chosen, key=lambda k: hash_bucket("marked-order:" + k[1], 2**31 - 1))[:limit]
        chosen = {k: chosen[k] for k in keep}
    return chosen


def shipped_marks(shipped: dict) -> tuple[dict, set[str] | None]:
    """(image id -> the reference's marks, the reference's image ids to mark or None) from the selections
    present: the image list is ADE_500files.npy, else the keys of point_label_mappings.json."""
    marks_file = shipped.get("marked_points_file")
    files = shipped.get("marked_images_file")
    given = reference_files.load_point_mappings(marks_file.path) if marks_file and marks_file.present else {}
    if files and files.present:
        return given, {reference_files.image_id_of(f) for f in reference_files.load_marked_files(files.path)}
    return given, (set(given) if given else None)


def build_marked_points_asset(settings):
    curriculum_settings = settings.curriculum
    aurora_style = curriculum_settings.style == "aurora"
    engine = settings.execution.engine_settings()  # where the marking runs; not in the version: same rows either way
    opts = MarkingOptions(seed=curriculum_settings.seed, min_points=curriculum_settings.min_points,
                          max_points=curriculum_settings.max_points, variants=tuple(curriculum_settings.variants),
                          style="aurora" if aurora_style else "project", max_aspect_ratio=curriculum_settings.marked_max_aspect_ratio)
    # aurora: the reference's ADE_500files.npy / point_label_mappings.json when present (their sha256 in the version)
    shipped = reference_selections.selections(settings, ("marked_images_file", "marked_points_file")) if aurora_style else {}
    version = code_version("1", curriculum_settings.marked_fraction, curriculum_settings.min_points, curriculum_settings.max_points,
                           curriculum_settings.variants, curriculum_settings.seed, curriculum_settings.marked_max_aspect_ratio,
                           *((curriculum_settings.style, curriculum_settings.marked_max_images) if aurora_style else ()),
                           *([{n: sel.fingerprint() for n, sel in shipped.items()}] if any(s.present for s in shipped.values()) else []))

    @dg.multi_asset(
        outs={
            "marked_points": dg.AssetOut(
                description="Images resized to 336x336 with 2-5 BLINK-style markers (red circle, letter in a white box) at "
                "points of clearly different depth, and the answer to 'which point is closest to the camera?'.",
                code_version=version, kinds={"parquet", "opencv"}, group_name=GROUP),
            "marked_points_rejects": dg.AssetOut(
                description="Sampled images where no valid set of points exists (e.g. flat depth), or too elongated to mark "
                "(curriculum.marked_max_aspect_ratio).",
                code_version=code_version("1"), kinds={"parquet"}, group_name=GROUP),
        },
        ins={"pseudo_depth": dg.AssetIn(), **{name: dg.AssetIn(table) for name, table in IMAGE_TABLES.items()}},
        can_subset=False,
    )
    def marked_points(context: dg.AssetExecutionContext, storage: StorageResource, pseudo_depth: TableHandle,
                      ade20k: TableHandle, lvis: TableHandle, refcoco: TableHandle):
        given_marks, reference_ids = shipped_marks(shipped)
        chosen = choose_marked_images(pseudo_depth, curriculum_settings, reference_ids)
        sink = RejectSink()
        examples = []

        def chosen_images():
            for dataset, table in (("ade20k", ade20k), ("lvis", lvis), ("refcoco", refcoco)):
                for img in table.iter_rows(columns=["image_id", "split", "width", "height", "image_bytes"]):
                    key = (dataset, img["image_id"])
                    if key in chosen:
                        if dataset == "ade20k" and img["image_id"] in given_marks:  # the reference's own points
                            img = {**img, "given_marks": given_marks[img["image_id"]]}
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
        out = out.with_metadata({**out.metadata, "examples": dg.MetadataValue.md(image_grid_markdown([examples], width=200)),
                                 **{f"selection_{n}": dg.MetadataValue.text(sel.describe()) for n, sel in shipped.items()}})
        if reference_ids is not None and chosen:
            context.log.warning(f"{len(chosen)} images of the reference's marked-image list have no ADE20K image row")
        return out, sink.emit(context, storage, "marked_points_rejects")

    return marked_points


def project_pools(curriculum_settings, pools, formats, codes_by_image, tables: dict[str, TableHandle]):
    """The project's pools: every task on every usable image; atomic and reasoning lists by task name."""
    cs = curriculum_settings
    curriculum_pools.add_depth_tasks(pools, tables["depth_tokens"].iter_rows(columns=DEPTH_TOKEN_COLUMNS), formats)
    curriculum_pools.add_marked_tasks(pools, tables["marked_points"].iter_rows(columns=MARKED_COLUMNS), codes_by_image,
                                      bottleneck=cs.bottleneck)
    lvis_rows = tables["lvis_images"].iter_rows(columns=["image_id", "neg_category_names", "not_exhaustive_category_ids"])
    curriculum_pools.add_count_tasks(pools, tables["box_tokens"].iter_rows(), lvis_rows, cs.seed, formats,
                                     instance_rows=tables["lvis_instances"].iter_rows(columns=INSTANCE_COLUMNS))
    depth336 = {r["image_id"]: to_grid(decode_png(r["depth_png"]), cv2.INTER_LINEAR)
                for r in tables["pseudo_depth"].iter_rows(columns=["dataset", "image_id", "depth_png"]) if r["dataset"] == "refcoco"}
    box_by_ref = {int(b["ref_id"]): b for b in tables["box_tokens"].iter_rows() if b["dataset"] == "refcoco"}
    refcoco_rows = (r for r in tables["refcoco_refs"].iter_rows() if r["dataset"] == "refcoco")  # Aurora: RefCOCO only
    curriculum_pools.add_ground_tasks(pools, refcoco_rows, box_by_ref, depth336, codes_by_image, formats,
                                      cs.seed, cs.ground_pairs_per_image)
    pools.keep_only(cs.tasks)
    return pools.atomic, pools.reasoning


def aurora_style_pools(settings, pools, formats, codes_by_image, tables: dict[str, TableHandle]):
    """The notebooks' pools, in their order: depth atomic on ADE20K (ADE_codes), per marked image direct then
    CoT; counting from the selected LVIS images (atomic set and CoT set disjoint). Grounding has no reference."""
    cs = settings.curriculum
    wanted = set(cs.tasks)
    skipped = {}
    if "depth_atomic" in wanted:
        curriculum_pools.add_depth_tasks(pools, (r for r in tables["depth_tokens"].iter_rows(columns=DEPTH_TOKEN_COLUMNS)
                                                 if r["dataset"] == "ade20k"), formats)
    depth_reasoning = aurora_pools.depth_reasoning(tables["marked_points"].iter_rows(columns=MARKED_COLUMNS), codes_by_image, skipped)
    count_atomic, count_reasoning = [], []
    if {"count_atomic", "count_cot", "count_direct"} & wanted:
        count_atomic, count_reasoning = aurora_pools.count_pools(
            tables["lvis_images"].iter_rows(columns=["image_id", "neg_category_ids", "neg_category_names", "not_exhaustive_category_ids"]),
            tables["box_tokens"].iter_rows(), formats, seed=cs.seed, n_atomic=cs.count_atomic_images, n_cot=cs.count_cot_images,
            max_per_count=cs.max_per_count, ids_dir=reference_selections.selection(settings, "count_image_ids").usable_path,
            plurals=aurora_pools.load_plurals(reference_selections.selection(settings, "plurals_file").usable_path), skipped=skipped,
            instance_rows=tables["lvis_instances"].iter_rows(columns=INSTANCE_COLUMNS))
    for task, reasons in skipped.items():
        for reason, n in reasons.items():
            pools.skipped[task][reason] += n
    for s in count_atomic + depth_reasoning + count_reasoning:
        pools.samples[s.task].append(s)
    pools.keep_only(cs.tasks)
    atomic = [s for t in ("depth_atomic",) if t in wanted for s in pools.samples.get(t, [])] + \
             [s for s in count_atomic if "count_atomic" in wanted]
    reasoning = [s for s in depth_reasoning + count_reasoning if s.task in wanted]
    return atomic, reasoning


def training_order(curriculum_settings, pools, atomic, reasoning) -> list:
    """(epoch, sample) in training order, by the configured schedule."""
    cs = curriculum_settings
    if cs.style == "perceptio":
        samples = [s for t in sorted(pools.samples) for s in pools.samples[t]]
        return perceptio_pools.perceptio_order(samples, epochs=cs.epochs, seed=cs.seed, limit=cs.total_samples)
    if cs.schedule == "aurora" and cs.mixing == "sequential":
        return sequential_epochs(atomic, reasoning, total_length=cs.epoch_size or len(atomic),
                                 percents=cs.percents, epochs=cs.epochs, seed=cs.seed)
    if cs.schedule == "aurora":
        return aurora_schedule(atomic, reasoning, epochs=cs.epochs, percents=cs.percents, epoch_size=cs.epoch_size, seed=cs.seed)
    by_task = {t: v for t, v in pools.samples.items() if v}
    total = cs.total_samples or cs.epochs * max(1, len(atomic))
    return annealed_schedule(by_task, {t: cs.difficulties[t] for t in by_task}, total, cs.tau0, cs.lam,
                             seed=cs.seed, epochs=cs.epochs, temperature_form=cs.temperature_form)


def curriculum_metadata(schedule, pools) -> dict:
    first = to_llava_record(schedule[0][1])["conversations"] if schedule else []
    return {
        "samples_per_task": dg.MetadataValue.json(dict(Counter(s.task for _, s in schedule))),
        "pool_sizes": dg.MetadataValue.json(pools.counts()),
        "skipped": dg.MetadataValue.json({t: dict(v) for t, v in pools.skipped.items()}),
        "mix_by_epoch": dg.MetadataValue.md(png_markdown(plot_mix_by_epoch(mix_by_epoch(schedule)), "task mix by epoch")),
        "first_sample": dg.MetadataValue.json(first),
    }


def curriculum_version_fields(curriculum_settings) -> dict:
    """The settings the curriculum's code version hashes: every field, except ``coordinates`` at its default
    (added later: a store built before it keeps its version)."""
    fields = curriculum_settings.model_dump(mode="json")
    if fields["coordinates"] == "tokens":
        del fields["coordinates"]
    return fields


CURRICULUM_INS = ("depth_tokens", "box_tokens", "marked_points", "lvis_images", "refcoco_refs", "pseudo_depth", "ade20k_images",
                  "refcoco_images", "lvis_instances")


def build_curriculum_asset(settings, variant: str | None = None):
    """``curriculum``, or with ``variant`` the experiment variant's ``curriculum__<variant>`` (``settings``
    are then that variant's settings). Under ``style: perceptio`` a multi-asset that also writes
    ``curriculum_rejects`` (the referring sentences that could not become samples, with the reason)."""
    curriculum_settings = settings.curriculum
    aurora_style = curriculum_settings.style == "aurora"
    perceptio_style = curriculum_settings.style == "perceptio"
    # aurora: the reference's counting image ids and plurals when present (their sha256 in the version)
    count_files = reference_selections.selections(settings, ("count_image_ids", "plurals_file")) if aurora_style else {}
    name = variant_asset_name("curriculum", variant)
    rejects_name = variant_asset_name("curriculum_rejects", variant)
    description = ("The training curriculum: task pools (depth/count/grounding; atomic, CoT, direct; Perceptio's referring "
                   "segmentation) ordered by the schedule (Aurora's annealed atomic share, the paper's temperature schedule, or "
                   "Perceptio's shuffled single stage). One row per sample in training order with lineage ids (and the mask, for "
                   "Perceptio); a LLaVA JSON and its image folder are exported beside it, named (with the JSON's sha256) in every row.")
    version = code_version("2", curriculum_version_fields(curriculum_settings),  # 2: rows name the LLaVA export
                           *([{n: sel.fingerprint() for n, sel in count_files.items()}]
                             if any(sel.present for sel in count_files.values()) else []))

    def build(context, storage: StorageResource, tables: dict[str, TableHandle]):
        image_tables = {"ade20k": tables["ade20k_images"], "lvis": tables["lvis_images"], "refcoco": tables["refcoco_images"]}
        formats = {(d, r["image_id"]): r["format"] for d, t in image_tables.items() for r in t.iter_rows(columns=["image_id", "format"])}
        codes_by_image = {(r["dataset"], r["image_id"]): (list(r["codes"]), r["vqvae_version"])
                          for r in tables["depth_tokens"].iter_rows(columns=DEPTH_TOKEN_COLUMNS)}
        pools = curriculum_pools.Pools()
        refer = None
        if curriculum_settings.is_vpt():  # VPT: RefCOCO and small LVIS objects, ordered by stage
            schedule = vpt_pools.vpt_schedule(
                pools, tasks=curriculum_settings.tasks, vpt=curriculum_settings.vpt, seed=curriculum_settings.seed,
                ref_rows=tables["refcoco_refs"].iter_rows(), instance_rows=tables["lvis_instances"].iter_rows(), formats=formats)
        else:
            if aurora_style:
                atomic, reasoning = aurora_style_pools(settings, pools, formats, codes_by_image, tables)
            elif perceptio_style:
                refer = perceptio_pools.add_perceptio_pools(
                    pools, curriculum_settings.tasks, formats, codes_by_image,
                    depth_rows=tables["depth_tokens"].iter_rows(columns=DEPTH_TOKEN_COLUMNS),
                    image_rows=tables["refcoco_images"].iter_rows(columns=["image_id", "format", "width", "height"]),
                    ref_rows=tables["refcoco_refs"].iter_rows(columns=perceptio_pools.REFER_COLUMNS))
                atomic, reasoning = pools.atomic, pools.reasoning
            else:
                atomic, reasoning = project_pools(curriculum_settings, pools, formats, codes_by_image, tables)
            schedule = training_order(curriculum_settings, pools, atomic, reasoning)
        context.log.info(f"pools: {pools.counts()}; skipped: { {t: dict(v) for t, v in pools.skipped.items()} }")
        if curriculum_settings.coordinates == "text":
            schedule = [(epoch, with_text_coordinates(s)) for epoch, s in schedule]
        export = export_llava(storage.root, schedule, image_tables, tables["marked_points"], aurora_style, asset_name=name)
        meta = {"llava_json": dg.MetadataValue.path(str(export.verified_json(storage.root))),
                "image_folder": dg.MetadataValue.path(str(export.image_folder(storage.root))),
                "llava_json_sha256": dg.MetadataValue.text(export.llava_json_sha256), **curriculum_metadata(schedule, pools),
                **{f"selection_{n}": dg.MetadataValue.text(sel.describe()) for n, sel in count_files.items()}}
        if refer is not None:
            meta["held_out_sentences"] = dg.MetadataValue.json({f"{d}/{sp}": n for (d, sp), n in sorted(refer.held_out.items())})
            meta["samples_with_mask"] = dg.MetadataValue.int(sum(s.mask_rle is not None for _, s in schedule))
        rows = ({**row, **export.as_columns()} for row in curriculum_pools.schedule_rows(schedule))
        config = {**curriculum_settings.model_dump(), **({"variant": variant} if variant else {})}
        out = emit_table(context, storage, schemas.CURRICULUM_SCHEMA, rows, config=config, metadata=meta,
                         output_name=name if perceptio_style else None)
        return out, refer

    ins = {n: dg.AssetIn() for n in CURRICULUM_INS}
    if not perceptio_style:
        @dg.asset(name=name, description=description, code_version=version, kinds={"parquet", "json"}, group_name=GROUP, ins=ins)
        def curriculum(context: dg.AssetExecutionContext, storage: StorageResource, **tables: TableHandle):
            return build(context, storage, tables)[0]

        return curriculum

    @dg.multi_asset(
        name=name,
        outs={name: dg.AssetOut(description=description, code_version=version, kinds={"parquet", "json"}, group_name=GROUP),
              rejects_name: dg.AssetOut(description="Referring sentences (train split) that could not become a Perceptio "
                                        "sample, with the reason (no depth tokens for the image, missing or malformed mask, ...).",
                                        code_version=version, kinds={"parquet"}, group_name=GROUP)},
        ins=ins, can_subset=False,
    )
    def perceptio_curriculum(context: dg.AssetExecutionContext, storage: StorageResource, **tables: TableHandle):
        out, refer = build(context, storage, tables)
        sink = RejectSink()
        sink.rejects = [r.as_row() for r in refer.rejects]
        return out, sink.emit(context, storage, rejects_name)

    return perceptio_curriculum


def build_curriculum_assets(settings) -> tuple[list, list]:
    """marked_points (shared) and the curriculum: one, or one per experiment variant that fine-tunes."""
    marked_points = build_marked_points_asset(settings)
    if not settings.experiment:
        curriculum = build_curriculum_asset(settings)
        return [marked_points, curriculum], build_curriculum_checks(settings, dg.AssetKey("curriculum"))
    assets, checks = [marked_points], []
    for variant in fine_tuned_variants(settings):
        curriculum = build_curriculum_asset(settings.variant_settings(variant), variant)
        assets.append(curriculum)
        checks += build_curriculum_checks(settings.variant_settings(variant), dg.AssetKey(variant_asset_name("curriculum", variant)),
                                          with_marked_points=not checks)
    if not checks:  # no variant fine-tunes: marked_points still gets its own check (the first one built)
        checks = build_curriculum_checks(settings, "marked_points")[:1]
    return assets, checks


def fine_tuned_variants(settings) -> list[str]:
    """The experiment's variants that train an adapter (every one but those evaluating the base model)."""
    return [v for v in settings.variant_names() if settings.variant_settings(v).evaluation.model == "adapter"]
