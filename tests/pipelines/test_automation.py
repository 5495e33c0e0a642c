"""The nightly schedule and the new-adapter sensor, evaluated with Dagster's test contexts."""

import datetime as dt

import automation_ticks
import dagster as dg
import pytest

from assets.depth import INPUT_SHARD_DIGEST
from assets.sources import SHARD_DIGESTS
from perception_tokens.buckets import bucket_digest, bucket_digests, hash_bucket
from pipelines.automation import evaluate_new_adapter, nightly_evaluation
from pipelines.automation_conditions import nightly, prompt, prompt_per_shard
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


# ---------------------------------------------------------------- the stages' automation conditions
# Toy graphs, ticked with dg.evaluate_automation_conditions; time moves with evaluation_time.

UTC = dt.timezone.utc
DAY = dt.datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


class Ticks(automation_ticks.Ticks):
    """Ticks on a list of toy assets."""

    def run(self, requested: set[str]) -> None:
        """Materialize what a tick requested, as the runs it launches would (parents first)."""
        by_name = {a.key.to_user_string(): a for a in self.defs}
        order = [a.key.to_user_string() for a in self.defs]
        for item in sorted(requested, key=lambda r: order.index(r.split("[")[0])):
            name, _, pk = item.partition("[")
            dg.materialize(self.defs, selection=[by_name[name]], partition_key=pk[:-1] or None, instance=self.instance)


def _shard_and_summary(summary_condition: dg.AutomationCondition) -> list:
    @dg.asset
    def root() -> None: ...

    @dg.asset(deps=[root], partitions_def=dg.StaticPartitionsDefinition(["a", "b"]), automation_condition=prompt())
    def shard() -> None: ...

    @dg.asset(deps=[root, shard], automation_condition=summary_condition)
    def summary() -> None: ...

    return [root, shard, summary]


def test_prompt_waits_for_an_input_requested_on_the_same_tick():
    """An unpartitioned stage over a partitioned one runs once, after the partitions. With
    Dagster's eager() it is requested on the same tick as the partitions, so its run reads their
    old versions and it must run again once they land."""
    for condition, first_tick in ((prompt(), {"shard[a]", "shard[b]"}),
                                  (dg.AutomationCondition.eager(), {"shard[a]", "shard[b]", "summary"})):
        instance = dg.DagsterInstance.ephemeral()
        assets = _shard_and_summary(condition)
        root, shard, summary = assets
        dg.materialize([root], instance=instance)
        for pk in ("a", "b"):
            dg.materialize(assets, selection=[shard], partition_key=pk, instance=instance)
        dg.materialize(assets, selection=[summary], instance=instance)
        ticks = Ticks(assets, instance)
        assert ticks.at(DAY) == set()

        dg.materialize([root], instance=instance)
        assert ticks.at(DAY + dt.timedelta(minutes=1)) == first_tick
        if "summary" not in first_tick:  # prompt(): once the partitions' runs are done, the summary's turn
            ticks.run(first_tick)
            assert ticks.at(DAY + dt.timedelta(minutes=2)) == {"summary"}


def test_nightly_runs_at_the_tick_after_a_change_and_a_daytime_change_waits_for_the_next_night():
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset
    def curriculum_toy() -> None: ...

    @dg.asset(deps=[curriculum_toy], automation_condition=nightly("0 3 * * *", "UTC"))
    def adapter_toy() -> None: ...

    assets = [curriculum_toy, adapter_toy]
    dg.materialize(assets, instance=instance)
    ticks = Ticks(assets, instance)
    assert ticks.at(DAY) == set()
    dg.materialize([curriculum_toy], instance=instance)  # the input changes at 10:00
    assert ticks.at(DAY + dt.timedelta(hours=1)) == set()  # not during the day
    assert ticks.at(DAY + dt.timedelta(hours=16, minutes=59)) == set()  # 02:59
    assert ticks.at(DAY + dt.timedelta(hours=17, minutes=1)) == {"adapter_toy"}  # 03:01
    assert ticks.at(DAY + dt.timedelta(hours=17, minutes=30)) == set()  # once
    dg.materialize(assets, selection=[adapter_toy], instance=instance)  # the run the request launched
    assert ticks.at(DAY + dt.timedelta(hours=17, minutes=45)) == set()

    # the next night nothing changed: nothing runs, and the tick's window closes ...
    assert ticks.at(DAY + dt.timedelta(days=1, hours=17, minutes=1)) == set()
    # ... so a change at noon waits for the night after, instead of running at noon
    dg.materialize([curriculum_toy], instance=instance)
    assert ticks.at(DAY + dt.timedelta(days=1, hours=26)) == set()
    assert ticks.at(DAY + dt.timedelta(days=2, hours=17, minutes=1)) == {"adapter_toy"}


def _toy_shard_graph(images: dict[str, str], condition: dg.AutomationCondition) -> list:
    """``ade20k_images`` records per-shard digests of ``images`` (id -> sha256) as the source
    assets do; each ``pseudo_depth`` partition records the digest of its shard, as the real one does."""
    parts = dg.MultiPartitionsDefinition({"dataset": dg.StaticPartitionsDefinition(["ade20k"]),
                                          "shard": dg.StaticPartitionsDefinition(["0", "1", "2"])})

    @dg.asset(name="ade20k_images")
    def images_toy() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={SHARD_DIGESTS: dg.MetadataValue.json(
            {"num_shards": 3, "by_shard": bucket_digests(images.items(), 3)})})

    @dg.asset(name="pseudo_depth", deps=[images_toy], partitions_def=parts, automation_condition=condition)
    def depth_toy(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        shard = int(context.partition_key.keys_by_dimension["shard"])
        mine = [(i, s) for i, s in images.items() if hash_bucket(i, 3) == shard]
        return dg.MaterializeResult(metadata={INPUT_SHARD_DIGEST: bucket_digest(mine)})

    return [images_toy, depth_toy]


def test_an_added_image_requests_only_its_shard():
    """With Dagster's eager() every shard of the table's dataset is requested; per shard, only
    the one the added image hashes to (and one whose image was replaced)."""
    images = {f"img{i}": f"sha{i}" for i in range(6)}
    added = next(f"new{i}" for i in range(100) if hash_bucket(f"new{i}", 3) == 1)
    replaced = next(i for i in images if hash_bucket(i, 3) == 2)
    every_shard = {f"pseudo_depth[ade20k|{s}]" for s in "012"}
    cases = ((prompt_per_shard(), set(), {"pseudo_depth[ade20k|1]", "pseudo_depth[ade20k|2]"}),
             (dg.AutomationCondition.eager(), every_shard, every_shard))
    for condition, after_reread, after_change in cases:
        state = dict(images)
        instance = dg.DagsterInstance.ephemeral()
        assets = _toy_shard_graph(state, condition)
        dg.materialize(assets[:1], instance=instance)
        for s in "012":
            dg.materialize(assets, selection=assets[1:], partition_key=f"ade20k|{s}", instance=instance)
        ticks = Ticks(assets, instance)
        assert ticks.at(DAY) == set()
        dg.materialize(assets[:1], instance=instance)  # the table re-read with the same images
        assert ticks.at(DAY + dt.timedelta(minutes=1)) == after_reread
        ticks.run(after_reread)
        assert ticks.at(DAY + dt.timedelta(minutes=1, seconds=30)) == set()  # handled
        state[added], state[replaced] = "sha-new", "sha-replaced"
        dg.materialize(assets[:1], instance=instance)
        assert ticks.at(DAY + dt.timedelta(minutes=2)) == after_change


def test_settings_choose_the_sensor_status_and_the_nightly_stages():
    from pipeline_lib.settings import ConfigError, settings_from_dict
    from pipelines.definitions import build_definitions

    def conditions(raw: dict) -> tuple[dict[str, str | None], dg.DefaultSensorStatus]:
        built = build_definitions(settings_from_dict(raw))
        graph = built.resolve_asset_graph()
        labels = {k.to_user_string(): (graph.get(k).automation_condition.get_label() if graph.get(k).automation_condition else None)
                  for k in graph.get_all_asset_keys()}
        return labels, built.resolve_sensor_def("keep_results_current").default_status

    labels, status = conditions({})
    assert status == dg.DefaultSensorStatus.STOPPED  # off until asked for
    assert labels["ade20k_files"] == "observe(0 * * * *)" and labels["pseudo_depth"] == "prompt_per_shard"
    assert labels["depth_tokens"] == labels["curriculum"] == labels["ade20k_images"] == "prompt"
    assert labels["lora_adapter"] == "nightly(0 3 * * *)"
    assert labels["depth_vqvae"] is None  # not retrained by automation unless asked
    assert labels["eval_predictions"] is None and labels["benchmark_blink"] is None  # the schedule and adapter sensor

    labels, status = conditions({"automation": {"enabled": True, "retrain_depth_vqvae": True, "nightly_cron": "30 1 * * 6",
                                                "observe_cron": "*/10 * * * *"}})
    assert status == dg.DefaultSensorStatus.RUNNING
    assert labels["depth_vqvae"] == labels["lora_adapter"] == "nightly(30 1 * * 6)"
    assert labels["coco_files"] == "observe(*/10 * * * *)"

    with pytest.raises(ConfigError, match=r"automation\.observe_cron: .*'hourly' is not a cron schedule"):
        settings_from_dict({"automation": {"observe_cron": "hourly"}})
    with pytest.raises(ConfigError, match=r"automation\.timezone: .*'Mars/Olympus' is not an IANA time zone"):
        settings_from_dict({"automation": {"timezone": "Mars/Olympus"}})
