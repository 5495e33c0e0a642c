"""``ptok score``: a model's answers file (LLaVA ``model_vqa.py`` jsonl) scored against a
benchmark, appended to the same history tables the graph writes."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Sequence


def run_score(settings, benchmark: str, root: Path, answers: Path, subset: str | None = None,
              images: Path | None = None, compat: Sequence[str] | None = None) -> tuple[list[dict], list[dict], list, list[dict]]:
    """Score an answers file (LLaVA model_vqa.py jsonl) against a benchmark: against ``subset``,
    or against every subset present whose question ids occur in it (each its own score row).

    ``compat``: peer rule specs (``lmms-eval==0.7.3``, ``vlmevalkit==2026-07-01``; empty: the newest
    of each peer; None: none): also read every answer with those rules; each prediction's
    ``extra_json`` holds, under ``compat``, each rule's verdict with its peer, version and source
    function, and the per-subset accuracy under each rule is returned (4th value; empty without)."""
    from evaluation.compat import compat_results, compat_table, resolve
    from evaluation.answer_files import score_answers_by_subset
    from evaluation.benchmarks import split_rows
    from evaluation.benchmarks.registry import get as get_benchmark, read_subsets, require_text_answers
    from evaluation.run import EvalIdentity, score_rows
    from perception_tokens import schemas
    from pipeline_lib.history import append_outside_dagster
    from pipelines.instance import get_instance

    require_text_answers(benchmark)
    rules = resolve(compat) if compat is not None else None  # a bad spec fails before anything is read
    if images is None and benchmark in settings.evaluation.images:
        images = Path(settings.resolve(settings.evaluation.images[benchmark]))
    rows, question_rejects = split_rows(read_subsets(benchmark, root, subset, images=images))
    if not rows:
        raise ValueError(f"{root}: no usable {benchmark} questions" + (f" in subset {subset!r}" if subset else "")
                         + "".join(f"; {r.record_id}: {r.reason}" for r in question_rejects[:3]))
    result = score_answers_by_subset(rows, answers, subset, ids_repeat=get_benchmark(benchmark).ids_repeat_across_subsets,
                                     question_rejects=question_rejects)
    rejects = result.rejects
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    # time for a reader, random for uniqueness: two scorings in one second stay two runs
    ident = EvalIdentity(model_id=f"answers:{answers.name}", model_kind="answers_file",
                         eval_run_id="ans-" + re.sub(r"[^0-9]", "", now)[:14] + "-" + uuid.uuid4().hex[:6], run_started_at=now)
    per_rule = compat_results(result.predictions, rules) if rules is not None else [None] * len(result.predictions)
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
    compat_rows = compat_table(result.predictions, per_rule) if rules is not None else []
    lineage = {"source": "ptok score", "answers": str(answers), "benchmark": benchmark, "root": str(root), "written_at": now}
    instance = get_instance()
    append_outside_dagster(settings.storage_root, "eval_predictions", schemas.EVAL_PREDICTION_SCHEMA, preds, lineage, settings.catalog_path, instance)
    append_outside_dagster(settings.storage_root, "eval_scores", schemas.EVAL_SCORE_SCHEMA, scores, lineage, settings.catalog_path, instance)
    if rejects:  # what was not scored stays next to what was, with the reason
        append_outside_dagster(settings.storage_root, "eval_answer_rejects", schemas.ANSWER_REJECT_SCHEMA,
                               [{"eval_run_id": ident.eval_run_id, "run_started_at": now, "answers_file": str(answers), **r.as_row()}
                                for r in rejects], lineage, settings.catalog_path, instance)
    return preds, scores, rejects, compat_rows
