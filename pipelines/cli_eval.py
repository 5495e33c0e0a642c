"""``ptok eval`` and ``ptok compare``: evaluation outside the web UI, appended to the same
history tables the graph writes. ``ptok score`` is in ``pipelines.cli_score``, the HTML report
in ``pipeline_lib.report_html``, the LLaVA export in ``pipelines.cli_export``."""

from __future__ import annotations

from pathlib import Path


def read_benchmark(name: str, root: Path, images: Path | None = None) -> tuple[list[dict], list]:
    from evaluation.benchmarks import read_benchmark as read_rows, split_rows

    rows, rejects = split_rows(read_rows(name, root, images))
    if not rows:
        raise ValueError(f"{root}: no usable {name} questions ({len(rejects)} rejected)")
    return rows, rejects


def latest_manifest(settings, asset: str) -> dict:
    """The one row of a manifest table (lora_adapter, depth_vqvae), local or on object storage."""
    from pipeline_lib.folders import committed_table

    return committed_table(settings.storage_root, asset).read().to_pylist()[0]


def run_eval(settings, benchmark: str, root: Path, model: str, adapter: str | None, log=print,
             base: str | None = None, images: Path | None = None) -> tuple[list[dict], list[dict]]:
    from evaluation.run import (evaluate, generation_settings, limit_per_subset, load_eval_model, load_segmentation_head,
                                new_identity, score_rows)
    from perception_tokens import schemas
    from pipeline_lib.history import append_outside_dagster
    from pipelines.instance import get_instance
    from training.llava.aurora_checkpoint import is_aurora_checkpoint

    from evaluation.benchmarks.registry import get as get_benchmark
    from evaluation.perceptio import is_perceptio_adapter

    manifest = latest_manifest(settings, "lora_adapter") if model == "adapter" and not adapter else None
    adapter_path = (adapter or manifest["path"]) if model == "adapter" else None
    if get_benchmark(benchmark).answer_type == "mask" and not is_perceptio_adapter(adapter_path):
        # before any model is loaded: only a Perceptio adapter (its [SEG] -> SAM2 head beside it) answers with masks
        raise ValueError(f"{benchmark}: the answers are masks, given by the segmentation head saved beside a Perceptio "
                         f"adapter (fine-tuned with finetune.segmentation.enabled); "
                         f"{adapter_path or model} has none, so it cannot be evaluated on {benchmark}")
    eval_settings = settings.evaluation
    if images is None and benchmark in eval_settings.images:
        images = Path(settings.resolve(eval_settings.images[benchmark]))
    rows, rejects = read_benchmark(benchmark, root, images)
    rows = limit_per_subset(rows, eval_settings.max_per_subset)
    head = reencoder = None
    if model == "adapter":
        model_id = Path(adapter_path).parent.name if adapter else manifest["model_id"]
        m, processor, kind = load_eval_model(adapter_path, None)
        head = load_segmentation_head(adapter_path, m)  # a Perceptio adapter is asked its way (evaluation.perceptio)
        from training.vpt.saving import load_reencoder

        reencoder = load_reencoder(adapter_path, device=m.device)  # a VPT adapter's DINOv2 + projector; None otherwise
    elif is_aurora_checkpoint(model):  # a LoRA folder from Aurora's own trainer: converted on load
        m, processor, kind = load_eval_model(model, base or settings.finetune.checkpoint)
        model_id = Path(model).name
    else:
        m, processor, kind = load_eval_model(None, model, settings.finetune.family)
        model_id = model
    ident = new_identity(model_id, kind)
    base = generation_settings(eval_settings, kind)
    runs = [tuple(r) for r in eval_settings.runs if r[1] not in ("oracle",)]  # oracle tokens need the graph's teacher + VQ-VAE
    preds = evaluate(m, processor, rows, ident, runs=runs, base_settings=base, log=log, segmentation_head=head,
                     reencoder=reencoder)
    scores = score_rows(preds)
    lineage = {"source": "ptok eval", "benchmark": benchmark, "root": str(root), "model_id": model_id, "eval_run_id": ident.eval_run_id,
               "rejects": len(rejects), "written_at": ident.run_started_at}
    instance = get_instance()
    append_outside_dagster(settings.storage_root, "eval_predictions", schemas.EVAL_PREDICTION_SCHEMA, preds, lineage, settings.catalog_path, instance)
    append_outside_dagster(settings.storage_root, "eval_scores", schemas.EVAL_SCORE_SCHEMA, scores, lineage, settings.catalog_path, instance)
    return preds, scores


def run_compare(settings, run_a: str, run_b: str, match_mode: bool = True) -> tuple[list[dict], list[tuple], list[tuple]]:
    """Paired comparison of two evaluation runs from eval_predictions (see evaluation.compare)."""
    from evaluation.compare import compare_runs, unmatched_groups
    from pipeline_lib import catalog

    cols = ["eval_run_id", "benchmark", "subset", "mode", "ablation", "question_id", "correct", "error"]
    ids = ", ".join("'" + r.replace("'", "''") + "'" for r in (run_a, run_b))
    names, rows = catalog.query(settings.catalog_path, f"select {', '.join(cols)} from eval_predictions where eval_run_id in ({ids})",
                                catalog.allowed_dirs_for(settings))
    preds = [dict(zip(names, r)) for r in rows]
    by_run = {run: [p for p in preds if p["eval_run_id"] == run] for run in (run_a, run_b)}
    missing = [run for run, ps in by_run.items() if not ps]
    if missing:
        _, recent = catalog.query(settings.catalog_path, "select eval_run_id, any_value(model_id), count(*) from eval_predictions "
                                  "group by 1 order by max(run_started_at) desc limit 8", catalog.allowed_dirs_for(settings))
        raise ValueError(f"no predictions for eval run(s) {missing} in eval_predictions; recent runs: "
                         + ", ".join(f"{r[0]} ({r[1]}, {r[2]} rows)" for r in recent))
    rows_out = compare_runs(by_run[run_a], by_run[run_b], match_mode=match_mode)
    only_a, only_b = unmatched_groups(by_run[run_a], by_run[run_b]) if match_mode else ([], [])
    return rows_out, only_a, only_b
