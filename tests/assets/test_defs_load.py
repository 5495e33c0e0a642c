"""The code location's Definitions load, and every asset and job says what it is and who owns it."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.definitions import defs


@pytest.fixture(scope="module")
def graph():
    dg.Definitions.validate_loadable(defs)
    return defs.resolve_asset_graph()


def _name(key: dg.AssetKey) -> str:
    return key.to_user_string()


def test_every_materializable_asset_is_described_grouped_owned_and_versioned(graph):
    keys = sorted(graph.materializable_asset_keys, key=_name)
    assert len(keys) > 20
    problems = []
    for key in keys:
        node = graph.get(key)
        for field, value in (("description", node.description), ("group", node.group_name), ("owners", node.owners),
                             ("code_version", node.code_version)):
            if not value:
                problems.append(f"{_name(key)}: no {field}")
        if node.group_name == "default":
            problems.append(f"{_name(key)}: left in the default group")
    assert problems == []


def test_observed_dataset_roots_are_described_and_grouped(graph):
    observed = sorted((k for k in graph.get_all_asset_keys() if graph.get(k).is_observable), key=_name)
    assert [_name(k) for k in observed] == ["ade20k_files", "coco_files", "lvis_files", "refcoco_files", "refcoco_plus_files",
                                            "refcocog_files"]
    for key in observed:
        node = graph.get(key)
        assert node.description and node.group_name == "sources", _name(key)


def test_observed_dataset_roots_have_owners(graph):
    observed = [k for k in graph.get_all_asset_keys() if graph.get(k).is_observable]
    assert observed and all(graph.get(k).owners == ["team:data"] for k in observed)


def test_every_job_selects_assets_and_is_described():
    jobs = [j for j in defs.resolve_all_job_defs() if not j.name.startswith("__")]  # __ASSET_JOB is Dagster's implicit job
    assert {j.name for j in jobs} >= {"sources", "per_image_shards", "train_depth_tokenizer", "finetune", "evaluate"}
    for job in jobs:
        assert job.asset_layer.selected_asset_keys, f"job {job.name} selects no asset"
        assert job.description, f"job {job.name} has no description"


def test_schedules_and_sensors_target_defined_jobs():
    names = {j.name for j in defs.resolve_all_job_defs()}
    assert defs.schedules and defs.sensors
    for schedule in defs.schedules:
        assert schedule.job_name in names, schedule.name
    graph = defs.resolve_asset_graph()
    for sensor in defs.sensors:
        if isinstance(sensor, dg.AutomationConditionSensorDefinition):
            # it targets assets, not a job: every asset that has a condition must be in its selection
            conditioned = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None}
            assert conditioned and conditioned <= sensor.asset_selection.resolve(graph), sensor.name
            continue
        assert sensor.targets and all(t.job_name in names for t in sensor.targets), sensor.name
