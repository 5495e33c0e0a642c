"""Scheduled and event-driven re-runs: nightly evaluation, and evaluation of every new adapter."""

from __future__ import annotations

import dagster as dg

EVAL_SELECTION = dg.AssetSelection.assets("eval_predictions", "eval_scores")

evaluate_job = dg.define_asset_job(
    "evaluate", selection=EVAL_SELECTION,
    description="Evaluate the latest LoRA adapter on every benchmark and append predictions and scores.",
)

nightly_evaluation = dg.ScheduleDefinition(
    name="nightly_evaluation",
    job=evaluate_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    description="Re-run the evaluation every night against the latest adapter (scores accumulate as history).",
)


def experiment_evaluate_job(eval_asset_names: list[str]) -> dg.UnresolvedAssetJobDefinition:
    """With an ``experiment`` section: the same ``evaluate`` job over every variant's evaluation and the comparison."""
    return dg.define_asset_job("evaluate", selection=dg.AssetSelection.assets(*eval_asset_names),
                               description="Evaluate every experiment variant and rebuild the paper comparison.")


def experiment_nightly_evaluation(job) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(name="nightly_evaluation", job=job, cron_schedule="0 3 * * *", execution_timezone="UTC",
                                 description="Re-run every variant's evaluation every night (scores accumulate as history).")


@dg.asset_sensor(asset_key=dg.AssetKey("lora_adapter"), job=evaluate_job, name="evaluate_new_adapter",
                 description="Evaluate each newly materialized adapter once.")
def evaluate_new_adapter(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    mat = asset_event.dagster_event.event_specific_data.materialization
    model_id = str(mat.metadata.get("adapter_dir").value) if "adapter_dir" in mat.metadata else asset_event.run_id
    return dg.RunRequest(run_key=f"adapter-{asset_event.run_id}", tags={"ptok/adapter": model_id})
