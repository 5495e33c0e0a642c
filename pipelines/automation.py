"""Scheduled and event-driven re-runs: results kept current by Dagster's declarative automation,
nightly evaluation, and evaluation of every new adapter.

``keep_results_current`` (an AutomationConditionSensorDefinition) evaluates the conditions
``with_automation`` puts on the stages (pipelines/automation_conditions.py): the dataset roots
are observed on ``automation.observe_cron``; the cheap stages follow promptly, shard by shard
for ``pseudo_depth``; the fine-tune (and ``depth_vqvae`` with ``automation.retrain_depth_vqvae``)
at most once per ``automation.nightly_cron`` tick. Evaluation is left to the two instigators
below: each new adapter is evaluated once, and ``nightly_evaluation`` re-evaluates the latest.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from pipeline_lib.settings import AutomationSettings
from pipelines.automation_conditions import nightly, observe_on, prompt, prompt_per_shard

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


PROMPT_GROUPS = ("sources", "tokens", "curriculum")  # tables, box and depth tokens, marked points, curriculum


def stage_conditions(settings: AutomationSettings) -> dict[str, dg.AutomationCondition]:
    """The condition of each stage, by group (and by key for the depth group)."""
    each_night = nightly(settings.nightly_cron, settings.timezone)
    by_key: dict[str, dg.AutomationCondition] = {"pseudo_depth": prompt_per_shard(), "pseudo_depth_rejects": prompt_per_shard()}
    if settings.retrain_depth_vqvae:
        by_key["depth_vqvae"] = each_night
    return {**{group: prompt() for group in PROMPT_GROUPS}, "finetune": each_night, **by_key}


def with_automation(assets: Sequence, settings: AutomationSettings) -> list:
    """``assets`` with their automation conditions: observable dataset roots observe on
    ``observe_cron``; materializable assets get their stage's condition, or none (evaluation,
    benchmarks, and depth_vqvae unless retrained nightly)."""
    conditions = stage_conditions(settings)
    observe = observe_on(settings.observe_cron, settings.timezone)

    def condition_of(spec: dg.AssetSpec) -> dg.AssetSpec:
        by_key = conditions.get(spec.key.to_user_string())
        return spec.replace_attributes(automation_condition=by_key or conditions.get(spec.group_name or ""))

    out = []
    for a in assets:
        if getattr(a, "is_observable", False) and not getattr(a, "is_materializable", False):
            out.extend(dg.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=observe), [a]))
        else:
            out.extend(dg.map_asset_specs(condition_of, [a]))
    return out


def keep_results_current(settings: AutomationSettings) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "keep_results_current",
        target=dg.AssetSelection.all(include_sources=True),
        default_status=dg.DefaultSensorStatus.RUNNING if settings.enabled else dg.DefaultSensorStatus.STOPPED,
        use_user_code_server=True,  # the shard and same-tick conditions are Python, evaluated in the code location
        description="Keep results current: observe the dataset roots, re-run what their changes reach "
        "(cheap stages promptly, the fine-tune at most nightly). Toggle it here, or set automation.enabled.",
    )
