"""``ptok eval``, ``ptok score``, ``ptok report``, ``ptok export-llava``: evaluation and outputs
outside the web UI, writing to the same tables the graph writes."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import uuid
from pathlib import Path

def read_benchmark(name: str, root: Path, images: Path | None = None) -> tuple[list[dict], list]:
    from evaluation.benchmarks import read_benchmark as read_rows, split_rows

    rows, rejects = split_rows(read_rows(name, root, images))
    if not rows:
        raise ValueError(f"{root}: no usable {name} questions ({len(rejects)} rejected)")
    return rows, rejects


def latest_manifest(settings, asset: str) -> dict:
    import pyarrow.parquet as pq

    path = Path(settings.storage_root) / f"{asset}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: materialize {asset} first (ptok materialize {asset})")
    return pq.read_table(path).to_pylist()[0]


def run_eval(settings, benchmark: str, root: Path, model: str, adapter: str | None, log=print,
             base: str | None = None, images: Path | None = None) -> tuple[list[dict], list[dict]]:
    from evaluation.run import evaluate, generation_settings, limit_per_subset, load_eval_model, new_identity, score_rows
    from perception_tokens import schemas
    from pipeline_lib.history import append_outside_dagster
    from pipelines.instance import get_instance
    from training.llava.aurora_checkpoint import is_aurora_checkpoint

    ev = settings.evaluation
    if images is None and benchmark in ev.images:
        images = Path(settings.resolve(ev.images[benchmark]))
    rows, rejects = read_benchmark(benchmark, root, images)
    rows = limit_per_subset(rows, ev.max_per_subset)
    if model == "adapter":
        manifest = None if adapter else latest_manifest(settings, "lora_adapter")
        path = adapter or manifest["path"]
        model_id = Path(path).parent.name if adapter else manifest["model_id"]
        m, processor, kind = load_eval_model(path, None)
    elif is_aurora_checkpoint(model):  # a LoRA folder from Aurora's own trainer: converted on load
        m, processor, kind = load_eval_model(model, base or settings.finetune.checkpoint)
        model_id = Path(model).name
    else:
        m, processor, kind = load_eval_model(None, model, settings.finetune.family)
        model_id = model
    ident = new_identity(model_id, kind)
    base = generation_settings(ev, kind)
    runs = [tuple(r) for r in ev.runs if r[1] not in ("oracle",)]  # oracle tokens need the graph's teacher + VQ-VAE
    preds = evaluate(m, processor, rows, ident, runs=runs, base_settings=base, log=log)
    scores = score_rows(preds)
    lineage = {"source": "ptok eval", "benchmark": benchmark, "root": str(root), "model_id": model_id, "eval_run_id": ident.eval_run_id,
               "rejects": len(rejects), "written_at": ident.run_started_at}
    instance = get_instance()
    append_outside_dagster(settings.storage_root, "eval_predictions", schemas.EVAL_PREDICTION_SCHEMA, preds, lineage, settings.catalog_path, instance)
    append_outside_dagster(settings.storage_root, "eval_scores", schemas.EVAL_SCORE_SCHEMA, scores, lineage, settings.catalog_path, instance)
    return preds, scores


def run_score(settings, benchmark: str, root: Path, answers: Path, subset: str | None = None,
              images: Path | None = None, compat: bool = False) -> tuple[list[dict], list[dict], list, list[dict]]:
    """Score an answers file (LLaVA model_vqa.py jsonl) against a benchmark: against ``subset``,
    or against every subset present whose question ids occur in it (each its own score row).

    ``compat``: also read every answer with lmms-eval's and VLMEvalKit's matching rules; each
    prediction's ``extra_json`` holds them under ``compat``, and the per-subset accuracy under
    each rule is returned (4th value; empty without ``compat``)."""
    from evaluation.compat import compat_results, compat_table
    from evaluation.answer_files import score_answers_by_subset
    from evaluation.benchmarks import split_rows
    from evaluation.benchmarks.registry import get as get_benchmark, read_subsets
    from evaluation.run import EvalIdentity, score_rows
    from perception_tokens import schemas
    from pipeline_lib.history import append_outside_dagster
    from pipelines.instance import get_instance

    if images is None and benchmark in settings.evaluation.images:
        images = Path(settings.resolve(settings.evaluation.images[benchmark]))
    rows, _ = split_rows(read_subsets(benchmark, root, subset, images=images))
    if not rows:
        raise ValueError(f"{root}: no usable {benchmark} questions" + (f" in subset {subset!r}" if subset else ""))
    result = score_answers_by_subset(rows, answers, subset, ids_repeat=get_benchmark(benchmark).ids_repeat_across_subsets)
    rejects = result.rejects
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    # time for a reader, random for uniqueness: two scorings in one second stay two runs
    ident = EvalIdentity(model_id=f"answers:{answers.name}", model_kind="answers_file",
                         eval_run_id="ans-" + re.sub(r"[^0-9]", "", now)[:14] + "-" + uuid.uuid4().hex[:6], run_started_at=now)
    per_rule = compat_results(result.predictions) if compat else [None] * len(result.predictions)
    preds = []
    for p, rules in zip(result.predictions, per_rule):
        extra = {"missing_answer": p["missing_answer"], "answer_record": p["answer_record"]}
        if rules is not None:
            extra["compat"] = rules
        preds.append({
            "eval_run_id": ident.eval_run_id, "run_started_at": now, "model_id": ident.model_id, "model_kind": ident.model_kind,
            "benchmark": p["benchmark"], "subset": p["subset"], "question_id": str(p["question_id"]), "mode": "external",
            "ablation": "none", "constrained": False, "prompt_text": p.get("prompt"), "raw_output": p["raw_output"],
            "pred": p["pred"], "gold": str(p["gold"]), "correct": bool(p["correct"]), "answer_type": p.get("answer_type"),
            "valid_letters": list(p.get("valid_letters") or []), "depth_spans": [], "depth_spans_valid": [], "n_boxes": 0,
            "n_new_tokens": 0, "latency_s": 0.0, "error": None, "image_file": p.get("image_file"),
            "extra_json": json.dumps(extra, default=str),
        })
    scores = score_rows(preds)
    compat_rows = compat_table(result.predictions, per_rule) if compat else []
    lineage = {"source": "ptok score", "answers": str(answers), "benchmark": benchmark, "root": str(root), "written_at": now}
    instance = get_instance()
    append_outside_dagster(settings.storage_root, "eval_predictions", schemas.EVAL_PREDICTION_SCHEMA, preds, lineage, settings.catalog_path, instance)
    append_outside_dagster(settings.storage_root, "eval_scores", schemas.EVAL_SCORE_SCHEMA, scores, lineage, settings.catalog_path, instance)
    return preds, scores, rejects, compat_rows


def export_llava(settings, dest: Path) -> Path:
    folder = Path(settings.storage_root) / "curriculum" / "files" / "llava"
    if not (folder / "curriculum.json").exists():
        raise FileNotFoundError(f"{folder}/curriculum.json does not exist: materialize curriculum first")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "curriculum.json", dest / "curriculum.json")
    shutil.copytree(folder / "images", dest / "images", dirs_exist_ok=True)
    return dest / "curriculum.json"


def _md_to_html(text: str) -> str:
    """Enough markdown for our metadata: tables (with embedded <img>), paragraphs."""
    lines, out, table = text.splitlines(), [], []

    def flush():
        if table:
            rows = [r.strip().strip("|").split("|") for r in table if not re.fullmatch(r"\|?(\s*-+\s*\|)+\s*-*\s*", r.strip())]
            out.append("<table>" + "".join("<tr>" + "".join(f"<td>{c.strip()}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
            table.clear()

    for line in lines:
        if line.strip().startswith("|"):
            table.append(line)
        else:
            flush()
            if line.strip():
                out.append(f"<p>{line if '<img' in line else html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def write_report(settings, instance, out: Path) -> tuple[list[str], list[tuple]]:
    """Self-contained HTML: latest eval scores, then each asset's latest metadata (pictures inline)."""
    import dagster as dg

    from pipeline_lib import catalog

    cols, rows = [], []
    try:
        cols, rows = catalog.query(settings.catalog_path,
                                   "select benchmark, subset, mode, ablation, n, round(accuracy_pct, 1) acc, round(ci_low_pct, 1) ci_low, "
                                   "round(ci_high_pct, 1) ci_high, round(chance_pct, 1) chance, "
                                   "paper_llava15_13b_pct, paper_aurora_pct from eval_scores where run_started_at = "
                                   "(select max(run_started_at) from eval_scores) order by benchmark, subset, mode, ablation",
                                   catalog.allowed_dirs_for(settings))
    except Exception as exc:  # no evaluation yet: the report still shows the stages, and says why
        cols, rows, problem = [], [], str(exc)
    else:
        problem = None
    parts = ["<html><head><meta charset='utf-8'><title>Perception Tokens report</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse}td{border:1px solid #ccc;padding:3px 6px}h2{border-bottom:1px solid #888}</style></head><body>",
             "<h1>Perception Tokens report</h1>", f"<p>{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}</p>"]
    if problem:
        parts.append(f"<p>No evaluation table: {html.escape(problem)}</p>")
    if rows:
        parts.append("<h2>Latest evaluation</h2><table><tr>" + "".join(f"<td><b>{c}</b></td>" for c in cols) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows) + "</table>")
    for name in ("pseudo_depth", "depth_vqvae", "marked_points", "curriculum", "lora_adapter", "eval_scores"):
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        if event is None:
            continue
        parts.append(f"<h2>{name}</h2>")
        for key, value in event.asset_materialization.metadata.items():
            if key in ("dagster/column_schema", "lineage", "preview"):
                continue
            v = value.value if hasattr(value, "value") else value
            if isinstance(value, dg.MarkdownMetadataValue):
                parts.append(f"<h3>{key}</h3>" + _md_to_html(v))
            else:
                parts.append(f"<p><b>{html.escape(key)}</b>: {html.escape(json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v))}</p>")
    parts.append("</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    return cols, rows


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
