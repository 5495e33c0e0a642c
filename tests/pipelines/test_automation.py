"""The nightly schedule and the new-adapter sensor, evaluated with Dagster's test contexts."""

import datetime as dt

import dagster as dg

from pipelines.automation import evaluate_new_adapter, nightly_evaluation
from pipelines.definitions import defs


def test_nightly_schedule_requests_an_evaluation_run():
    assert nightly_evaluation.cron_schedule == "0 3 * * *"
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.timezone.utc))
    requests = list(nightly_evaluation.evaluate_tick(context).run_requests)
    assert len(requests) == 1
    assert nightly_evaluation.job_name == "evaluate"
    job = defs.resolve_job_def("evaluate")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {"eval_predictions", "eval_scores"}


def test_sensor_fires_once_per_new_adapter():
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset(name="lora_adapter")
    def fake_adapter_for_sensor_test():
        return dg.MaterializeResult(metadata={"adapter_dir": "/runs/a/adapter"})

    dg.materialize([fake_adapter_for_sensor_test], instance=instance)
    context = dg.build_sensor_context(instance=instance, cursor=None)
    first = evaluate_new_adapter.evaluate_tick(context)
    assert len(first.run_requests) == 1
    assert first.run_requests[0].tags["ptok/adapter"] == "/runs/a/adapter"

    # nothing new since the cursor: no request
    again = evaluate_new_adapter.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert len(again.run_requests) == 0

    # a second adapter materialization: one more request
    dg.materialize([fake_adapter_for_sensor_test], instance=instance)
    third = evaluate_new_adapter.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert len(third.run_requests) == 1
