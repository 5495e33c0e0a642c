"""One path for settings: a resource edit the way the launchpad makes it and a YAML edit of the
same setting have the same effect on staleness; an edit the code versions cannot see is refused."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipeline_lib.resources import BenchmarksResource, DatasetsResource, DepthTeacherResource
from pipeline_lib.settings import ConfigError, DatasetSettings, DemoSettings, DepthSettings, load_settings, settings_from_dict
from pipeline_lib.settings_resource import settings_with_resource_config
from pipelines.definitions import build_definitions, build_resources, definitions_with_run_config
from pipelines.runner import _first_error, materialize_graph
from pipelines.staleness import stale_keys

ROOT = Path(__file__).resolve().parents[2]
SMALL_DEMO = {"n_ade20k": 6, "n_lvis": 6, "n_refcoco": 4, "seed": 3, "width": 160, "height": 120}
SELECTION = "key:ade20k_images or key:lvis_instances"


def write_config(path: Path, edit: tuple[str, str, object] | None = None) -> Path:
    """configs/demo.yaml pointed at a temporary world, optionally with one setting edited."""
    raw = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    raw["storage"] = {"root": str(path.parent / "storage")}
    raw["demo"] = {**raw["demo"], "root": str(path.parent / "demo"), **SMALL_DEMO}
    if edit:
        section, name, value = edit
        raw.setdefault(section, {})[name] = value
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The demo config's sources materialized once: (settings, instance, stale keys before any edit)."""
    work = tmp_path_factory.mktemp("one_path")
    settings = load_settings(write_config(work / "demo.yaml"))
    (work / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(work / "home")) as instance:
        report = materialize_graph(build_definitions(settings), instance, SELECTION, log=lambda m: None)
        assert not report.failed, report.failed
        before = stale_keys(instance, build_definitions(settings).resolve_asset_graph())
        yield work, settings, instance, before


def names(keys) -> set[str]:
    return {k.to_user_string() for k in keys}


# (resource, resource field, settings section, settings field, new value, assets the edit makes stale)
EDITS = [
    ("datasets", "max_image_pixels", "datasets", "max_image_pixels", 10_000, {"ade20k_images", "ade20k_images_rejects"}),
    ("datasets", "ade20k_splits", "datasets", "ade20k_splits", ["training"], {"ade20k_images", "ade20k_images_rejects"}),
    ("datasets", "demo_n_ade20k", "demo", "n_ade20k", 5, set()),  # generation size: seen by the files' fingerprint, no code version
]


@pytest.mark.parametrize("resource, field, section, setting, value, newly_stale", EDITS, ids=[e[1] for e in EDITS])
def test_ui_edit_and_yaml_edit_mark_the_same_assets_stale(world, resource, field, section, setting, value, newly_stale):
    work, settings, instance, before = world
    assert {"ade20k_images", "lvis_instances"}.isdisjoint(names(before))  # materialized: fresh

    # (a) the setting edited in the YAML file, the code location reloaded
    yaml_edit = load_settings(write_config(work / f"edited_{field}.yaml", (section, setting, value)))
    stale_a = stale_keys(instance, build_definitions(yaml_edit).resolve_asset_graph())

    # (b) the same setting edited as resource config, in the launchpad's run-config shape
    run_config = {"resources": {resource: {"config": {field: value}}}}
    stale_b = stale_keys(instance, definitions_with_run_config(settings, run_config).resolve_asset_graph())

    assert names(stale_a) == names(stale_b)
    assert names(stale_a) - names(before) == newly_stale
    assert "lvis_instances" not in names(stale_a)  # a setting it does not read leaves it fresh


def test_launchpad_edit_of_a_built_resource_is_refused_naming_the_setting(world, monkeypatch):
    """The code location's resources were built from the YAML; a run whose resource config was
    edited past them would write outputs staleness cannot see, so it fails at resource setup."""
    work, settings, instance, _ = world
    monkeypatch.setenv("PTOK_CONFIG", str(work / "demo.yaml"))  # the file the code location loaded
    defs = build_definitions(settings)
    built = defs.resources["datasets"]
    launchpad = {**built.settings_config(), "settings_fingerprint": built.settings_fingerprint}  # what it scaffolds

    def run(config):
        return dg.materialize(list(defs.assets), selection=["ade20k_images", "ade20k_images_rejects"], instance=instance,
                              resources=defs.resources, raise_on_error=False,
                              run_config={"resources": {"datasets": {"config": config}}})

    assert run(launchpad).success  # unedited: runs
    edited = run({**launchpad, "max_image_pixels": 10_000})
    assert not edited.success
    error = _first_error(edited)
    assert "datasets.max_image_pixels=10000 (file: 50000000)" in error, error  # names the setting and the file's value
    assert "settings file" in error
    # a partial config would fall back to the section's defaults for the rest: refused too
    partial = run({"max_image_pixels": 10_000, "settings_fingerprint": built.settings_fingerprint})
    assert not partial.success
    assert "datasets.ade20k_root=None" in _first_error(partial)


def test_settings_round_trip_through_resources():
    for raw in ({}, {"profile": "aurora", "depth": {"checkpoint": "depth_anything_vits14.pth"}}):
        settings = settings_from_dict(raw)
        assert settings_from_dict(settings.model_dump(mode="json")) == settings
        assert settings_with_resource_config(settings, build_resources(settings), {}) == settings
        same = {"datasets": {"config": DatasetsResource.from_settings(settings).settings_config()}}
        assert settings_with_resource_config(settings, build_resources(settings), same) == settings


def test_resource_fields_are_the_section_fields():
    """A new setting appears in its resource without anyone copying it there."""
    assert set(DatasetsResource.SETTINGS_PATHS) == set(DatasetSettings.model_fields) | {f"demo_{f}" for f in DemoSettings.model_fields}
    assert set(DepthTeacherResource.SETTINGS_PATHS) == set(DepthSettings.model_fields)
    assert set(DepthTeacherResource.model_fields) == set(DepthSettings.model_fields) | {"demo_root", "settings_fingerprint"}
    assert BenchmarksResource.SETTINGS_PATHS == {"roots": "evaluation.roots", "images": "evaluation.images",
                                                 "demo_scenes": "evaluation.demo_scenes", "demo_seed": "evaluation.demo_seed",
                                                 "demo_enabled": "demo.enabled"}


def test_bad_resource_edits_fail_naming_them():
    settings = settings_from_dict({})
    resources = build_resources(settings)
    with pytest.raises(ConfigError, match=r"resources\.benchmarks\.config\.demo_root is computed from other settings"):
        settings_with_resource_config(settings, resources, {"benchmarks": {"config": {"demo_root": "/elsewhere"}}})
    with pytest.raises(ConfigError, match=r"resources\.storage: not a settings-section resource"):
        settings_with_resource_config(settings, resources, {"storage": {"config": {"row_group_rows": 8}}})
    with pytest.raises(ConfigError, match=r"datasets\.max_image_pixels: Input should be greater than or equal to 1"):
        settings_with_resource_config(settings, resources, {"datasets": {"config": {"max_image_pixels": 0}}})
