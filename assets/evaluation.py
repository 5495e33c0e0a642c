"""Evaluation stage: benchmark tables read from their published formats, the model's answers
(one row per question, mode and ablation) and the scores, both kept as history."""

from collections import defaultdict
from pathlib import Path

import dagster as dg

from assets.versioning import code_version
from pipeline_lib.executors import gpu_op_tags
from perception_tokens import schemas
from pipeline_lib.emit import RejectSink, emit_table
from pipeline_lib.folders import eval_chart_file
from pipeline_lib.history import committed, history_rows, locked_history
from pipeline_lib.metadata import image_grid_markdown, png_markdown
from pipeline_lib.resources import BenchmarksResource, DepthTeacherResource, StorageResource
from pipeline_lib.settings_experiment import variant_asset_name
from pipeline_lib.tables import TableHandle

GROUP = "evaluation"
from evaluation.benchmarks import registry as benchmark_registry
BENCH_FIELDS = [f.name for f in schemas.BENCHMARK_SCHEMA]


def _benchmark_rows(items, sink: RejectSink):
    for item in items:
        if isinstance(item, dict):
            yield {k: (item.get(k) if k != "question_id" else str(item.get(k))) for k in BENCH_FIELDS}
        else:
            sink.rejects.append(item.as_row())


def build_benchmark_assets(settings) -> list:
    eval_settings = settings.evaluation
    out = []
    for name in benchmark_registry.names():
        def make(name=name):  # bind the loop variables for the decorated function
            @dg.multi_asset(
                name=f"benchmark_{name}",
                outs={
                    f"benchmark_{name}": dg.AssetOut(
                        description=f"{name} questions read from the published format: prompt, choices, gold answer, image bytes.",
                        code_version=code_version("3", eval_settings.roots.get(name), eval_settings.images.get(name)), kinds={"parquet"}, group_name=GROUP),
                    f"benchmark_{name}_rejects": dg.AssetOut(
                        description=f"{name} records that could not be used (missing image, path leaving the root, no answer...).",
                        code_version=code_version("1"), kinds={"parquet"}, group_name=GROUP),
                },
                can_subset=False,
            )
            def _asset(context: dg.AssetExecutionContext, storage: StorageResource, benchmarks: BenchmarksResource):
                root = benchmarks.root(name, context.log)
                images = benchmarks.images_dir(name)
                items = benchmark_registry.read_benchmark(name, root, images)
                sink = RejectSink()
                table = emit_table(context, storage, schemas.BENCHMARK_SCHEMA, _benchmark_rows(items, sink),
                                   output_name=f"benchmark_{name}", config={"root": str(root), "images": str(images)})
                return table, sink.emit(context, storage, f"benchmark_{name}_rejects")
            return _asset
        out.append(make())
    return out


MASK_SCORE_COLUMNS = ("mode", "ablation", "benchmark", "subset", "n", "n_not_run", "n_unparsed", "ciou_pct", "ciou_ci_low_pct",
                      "ciou_ci_high_pct", "giou_pct", "giou_ci_low_pct", "giou_ci_high_pct")


def teacher_depth_fn(teacher, depth_dir: Path | None):
    """A benchmark row -> the teacher's uint8 depth map of its image (None when there is none).
    In demo mode the scenes' saved depth plays the teacher, as in pseudo_depth."""
    from evaluation.benchmarks.demo import demo_depth_name
    from perception_tokens.depth import PROJECT_FORMAT
    from perception_tokens.images import decode_rgb

    import numpy as np

    def teacher_map(row: dict):
        if teacher is None:
            path = depth_dir / demo_depth_name(row["benchmark"], row["subset"], str(row["question_id"])) if depth_dir else None
            if path is None or not path.exists():
                return None
            raw = (1.0 / np.load(path, allow_pickle=False)).astype(np.float32)
        else:
            rgb = decode_rgb(row["image_bytes"])
            raw = teacher.predict([rgb], [(row["benchmark"], str(row["question_id"]))])[0]
        # the teacher's own min-max (run.py's float32 for the V1 run.py teacher), as pseudo_depth stored it
        depth_u8, _, _ = getattr(teacher, "image_format", PROJECT_FORMAT).to_uint8(raw)
        return depth_u8

    return teacher_map


def oracle_tokens_fn(teacher, vqvae_model, depth_dir: Path | None):
    """Teacher depth -> VQ-VAE codes -> token string, for a benchmark row (the 'oracle' ablation)."""
    from perception_tokens.vocab import encode_depth
    from training.vqvae import extract_codes

    teacher_map = teacher_depth_fn(teacher, depth_dir)

    def oracle(row: dict):
        depth_u8 = teacher_map(row)
        if depth_u8 is None:
            return None
        codes = next(extract_codes(vqvae_model, [depth_u8], batch_size=1))[0]
        return encode_depth([int(c) for c in codes])

    return oracle


def vpt_run_metadata(preds: list[dict], rows: list[dict]) -> dict:
    """A VPT adapter's run: actions taken, and a few crop overlays (image with the GT box and the
    selected region, and the crop); nothing for other models."""
    from evaluation.region_overlays import region_overlay_examples

    vpt = [p for p in preds if p["n_actions"] is not None]
    if not vpt:
        return {}
    meta = {"vpt_actions": dg.MetadataValue.int(sum(p["n_actions"] for p in vpt))}
    overlays = region_overlay_examples([p for p in vpt if p["ablation"] == "normal"], rows)
    if overlays:
        meta["region_overlays"] = dg.MetadataValue.md(image_grid_markdown([overlays], width=320))
    return meta


def build_evaluation_assets(settings) -> tuple[list, list]:
    """eval_predictions and eval_scores, or one pair per experiment variant (``eval_predictions__<variant>``)."""
    if not settings.experiment:
        return build_variant_evaluation(settings)
    assets = []
    for variant in settings.variant_names():
        assets += build_variant_evaluation(settings.variant_settings(variant), variant)[0]
    return assets, []


def build_variant_evaluation(settings, variant: str | None = None) -> tuple[list, list]:
    eval_settings, finetune_settings = settings.evaluation, settings.finetune
    bench_keys = [f"benchmark_{n}" for n in benchmark_registry.names()]
    predictions_name, scores_name = variant_asset_name("eval_predictions", variant), variant_asset_name("eval_scores", variant)
    # a variant evaluating the base model (the paper's "LLaVA 1.5 13B" row) has no adapter to wait for
    adapter_in = {} if variant is not None and eval_settings.model == "base" else {
        "lora_adapter": dg.AssetIn(variant_asset_name("lora_adapter", variant))}

    @dg.asset(
        name=predictions_name,
        description="The model's answer to every benchmark question, per mode (direct / chain-of-thought) and ablation "
        "(generated, oracle and random depth tokens): raw output, parsed answer, gold, correct, generated spans, "
        "latency. Every evaluation run is appended (eval_run_id, run_started_at).",
        code_version=code_version("2", eval_settings, finetune_settings.checkpoint),  # 2: VPT actions, gt_box
        kinds={"parquet", "pytorch"},
        group_name=GROUP,
        ins={**adapter_in, "depth_vqvae": dg.AssetIn(), **{k: dg.AssetIn() for k in bench_keys}},
        pool="accelerator",
        op_tags=gpu_op_tags(settings.execution),
    )
    def eval_predictions(context: dg.AssetExecutionContext, storage: StorageResource, depth_teacher: DepthTeacherResource,
                         benchmarks: BenchmarksResource, depth_vqvae: TableHandle,
                         **tables: TableHandle):  # lora_adapter (unless a base variant), benchmark_<name> for every benchmark
        from evaluation.run import (evaluate, generation_settings, limit_per_subset, load_eval_model, load_segmentation_head,
                                    new_identity)
        from evaluation.segmentation_metrics import prediction_overlays
        from training.vpt.saving import load_reencoder
        from training.vqvae import load_vqvae

        benchmark_tables = {k: tables[k] for k in bench_keys}
        if eval_settings.model == "adapter":
            adapter = tables["lora_adapter"].read().to_pylist()[0]
            model, processor, kind = load_eval_model(adapter["path"], None)
            model_id = adapter["model_id"]
            # a Perceptio adapter (its head saved beside it) answers the mask benchmarks and is asked its way
            head = load_segmentation_head(adapter["path"], model)
            # a VPT adapter's re-encoder (DINOv2 + projector), saved beside it by the vpt fine-tune; None otherwise
            reencoder = load_reencoder(adapter["path"], device=model.device)
        else:
            model, processor, kind = load_eval_model(None, finetune_settings.checkpoint, finetune_settings.family)
            model_id = finetune_settings.checkpoint
            head = reencoder = None
        vq = load_vqvae(depth_vqvae.read().to_pylist()[0]["path"])
        teacher = None if depth_teacher.teacher == "ground_truth" else depth_teacher.build()
        oracle = oracle_tokens_fn(teacher, vq, benchmarks.demo_depth_dir if teacher is None else None)

        tables = [benchmark_tables[k] for k in bench_keys]
        # mask benchmarks (refcoco_res) are answered by the segmentation head from the generated [SEG]:
        # only a Perceptio adapter has one; other models skip them (and say so in the metadata)
        rows = [r for t in tables for r in limit_per_subset(t.iter_rows(), eval_settings.max_per_subset)
                if head is not None or r["answer_type"] != "mask"]
        ident = new_identity(model_id, kind)
        base = generation_settings(eval_settings, kind)
        # a VPT adapter answers through the action loop (evaluation/vpt_eval.py), re-encoding with its reloaded re-encoder
        preds = evaluate(model, processor, rows, ident, runs=[tuple(r) for r in eval_settings.runs], base_settings=base, oracle=oracle,
                         log=context.log.info, segmentation_head=head, reencoder=reencoder)
        overlays = prediction_overlays(preds, (r for r in rows if r["answer_type"] == "mask"))
        if variant is not None:
            preds = [{**p, "variant": variant} for p in preds]
        vpt_meta = vpt_run_metadata(preds, rows)
        errors = defaultdict(int)
        for p in preds:
            if p["error"]:
                errors[p["error"][:60]] += 1
        meta = {
            "eval_run_id": dg.MetadataValue.text(ident.eval_run_id),
            "model_id": dg.MetadataValue.text(model_id),
            "questions": dg.MetadataValue.int(len(rows)),
            "predictions_this_run": dg.MetadataValue.int(len(preds)),
            "not_run_reasons": dg.MetadataValue.json(dict(errors)),
            "perceptio": dg.MetadataValue.bool(head is not None),
            **vpt_meta,
            # one overlay (image | ground truth in green | prediction in red) per row, captioned
            **({"mask_overlays": dg.MetadataValue.md(image_grid_markdown([[o] for o in overlays], width=480))} if overlays else {}),
        }
        config = {**eval_settings.model_dump(), **({"variant": variant} if variant else {})}
        with locked_history(storage.root, predictions_name) as previous:  # read to commit under the append lock
            out = emit_table(context, storage, schemas.EVAL_PREDICTION_SCHEMA,
                             history_rows(previous, preds, schemas.EVAL_PREDICTION_SCHEMA), config=config, metadata=meta)
            return committed(out, storage.root, predictions_name)

    @dg.asset(
        name=scores_name,
        description="Accuracy per evaluation run, model, mode, ablation, benchmark and subset, beside chance, "
        "majority-class and the paper's published numbers (and CV-Bench's official score). History of every run: "
        "`select * from eval_scores order by run_started_at`.",
        code_version=code_version("2"),  # 2: VPT region scores
        kinds={"parquet", "duckdb"},
        group_name=GROUP,
        ins={"eval_predictions": dg.AssetIn(predictions_name)},
    )
    def eval_scores(context: dg.AssetExecutionContext, storage: StorageResource, eval_predictions: TableHandle):
        from evaluation.region_scores import drop_empty_region_fields
        from evaluation.run import score_rows
        from evaluation.scoring import plot_scores, scores_markdown

        with locked_history(storage.root, scores_name) as previous:  # read to commit under the append lock
            scored = set(previous.read(columns=["eval_run_id"])["eval_run_id"].to_pylist()) if previous is not None else set()
            by_run = defaultdict(list)
            for p in eval_predictions.iter_rows():
                if p["eval_run_id"] not in scored:
                    by_run[p["eval_run_id"]].append(p)
            new = [{**s, "variant": variant} for run in by_run.values() for s in score_rows(run)]
            latest = max(by_run.values(), key=lambda v: v[0]["run_started_at"]) if by_run else []
            latest_scores = score_rows(latest) if latest else []
            meta = {"runs_scored": dg.MetadataValue.int(len(by_run))}
            # letter / number answers: accuracy table and chart; mask benchmarks (refcoco_res): cIoU / gIoU table
            text_scores = [s for s in latest_scores if "ciou_pct" not in s]
            mask_scores = [s for s in latest_scores if "ciou_pct" in s]
            if text_scores:
                meta["scores"] = dg.MetadataValue.md(scores_markdown(drop_empty_region_fields(text_scores)))
                chart = eval_chart_file(storage.root, scores_name)
                plot_scores([s for s in text_scores if s["ablation"] in ("normal", "none")], chart)
                meta["chart"] = dg.MetadataValue.md(png_markdown(chart.read_bytes(), "accuracy vs baselines"))
            if mask_scores:
                meta["mask_scores"] = dg.MetadataValue.md(scores_markdown(mask_scores, MASK_SCORE_COLUMNS))
            out = emit_table(context, storage, schemas.EVAL_SCORE_SCHEMA, history_rows(previous, new, schemas.EVAL_SCORE_SCHEMA), metadata=meta)
            return committed(out, storage.root, scores_name)

    return [eval_predictions, eval_scores], []
