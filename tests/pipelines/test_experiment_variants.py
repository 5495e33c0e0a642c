"""The experiment section: variants of the curriculum / finetune / evaluation settings as per-variant assets,
the shared upstream built once, and code versions that move only for the variant that changed."""

from __future__ import annotations

import copy

import dagster as dg
import pytest

from pipeline_lib.settings import ConfigError, settings_from_dict
from pipelines.definitions import build_definitions

BASE = {"curriculum": {"tasks": ["depth_atomic", "depth_cot", "depth_direct"]}}
VARIANTS = {
    "base": {"evaluation": {"model": "base", "runs": [["direct", "none"]]}},
    "finetuned_llava": {"curriculum": {"tasks": ["depth_direct"]}, "evaluation": {"runs": [["direct", "none"]]}},
    "aurora": {"headline": ["cot", "normal"]},
}


def _settings(variants=VARIANTS, **extra):
    return settings_from_dict({**copy.deepcopy(BASE), "experiment": {"variants": copy.deepcopy(variants)}, **extra})


def _code_versions(settings) -> dict[str, str]:
    defs = build_definitions(settings)
    return {k.to_user_string(): v for a in defs.assets if isinstance(a, dg.AssetsDefinition)
            for k, v in a.code_versions_by_key.items()}


def test_a_variant_overrides_only_its_sections():
    s = _settings()
    assert s.variant_names() == ["base", "finetuned_llava", "aurora"]
    assert s.variant_settings("finetuned_llava").curriculum.tasks == ["depth_direct"]
    assert s.variant_settings("aurora").curriculum.tasks == ["depth_atomic", "depth_cot", "depth_direct"]
    assert s.variant_settings("base").evaluation.model == "base"
    assert s.variant_settings("aurora").experiment is None  # a variant's settings are one pipeline's
    assert s.variant_settings("finetuned_llava").vqvae == s.vqvae
    with pytest.raises(KeyError, match="no experiment variant 'nope'"):
        s.variant_settings("nope")


@pytest.mark.parametrize("variants, problem", [
    ({"x": {"depth": {"preset": "aurora"}}}, "experiment.variants.x.depth"),  # shared stages cannot vary
    ({"x": {"curriculum": {"tasks": ["flying"]}}}, "experiment.variants.x: curriculum.tasks"),
    ({"x": {"finetune": {"lora_rank": 4}}}, "experiment.variants.x: finetune.lora_rank"),
    ({"Bad-Name": {}}, "must be a lower-case identifier"),
    ({"a__b": {}}, "without '__'"),
    ({"x": {"paper_method": "GPT-5"}}, "paper_method 'GPT-5'"),
    ({}, "experiment.variants"),
])
def test_bad_variants_fail_at_load_naming_the_variant(variants, problem):
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        _settings(variants)


def test_without_an_experiment_the_graph_is_unchanged():
    keys = set(_code_versions(settings_from_dict(copy.deepcopy(BASE))))
    assert {"curriculum", "lora_adapter", "eval_predictions", "eval_scores"} <= keys
    assert not any("__" in k for k in keys) and "paper_comparison" not in keys


def test_each_variant_gets_its_own_assets_and_base_no_adapter():
    defs = build_definitions(_settings())
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for v in ("finetuned_llava", "aurora"):
        assert {f"curriculum__{v}", f"lora_adapter__{v}", f"eval_predictions__{v}", f"eval_scores__{v}"} <= keys
    assert {"eval_predictions__base", "eval_scores__base"} <= keys
    assert not {"curriculum__base", "lora_adapter__base", "curriculum", "lora_adapter", "eval_predictions"} & keys
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
    assert "lora_adapter__aurora" in parents["eval_predictions__aurora"]
    assert not any(p.startswith("lora_adapter") for p in parents["eval_predictions__base"])
    assert parents["lora_adapter__finetuned_llava"] == {"curriculum__finetuned_llava"}
    assert {"depth_tokens", "marked_points"} <= parents["curriculum__aurora"]  # the shared upstream
    assert parents["paper_comparison"] == {"eval_predictions__base", "eval_predictions__finetuned_llava", "eval_predictions__aurora"}
    # the depth decoded from the model's own tokens: only variants that answer with chain-of-thought
    assert {p for p in parents["decoded_depth"] if p.startswith("eval_")} == {"eval_predictions__aurora"}
    assert "depth_vqvae" in parents["decoded_depth"]
    job = defs.resolve_job_def("evaluate")
    assert {"eval_predictions__base", "paper_comparison"} <= {k.to_user_string() for k in job.asset_layer.executable_asset_keys}


def test_adding_or_editing_a_variant_moves_only_that_variants_code_versions():
    before = _code_versions(_settings())
    added = _code_versions(_settings({**VARIANTS, "no_cot": {"curriculum": {"tasks": ["depth_atomic", "depth_direct"]}}}))
    new = {k for k in added if k not in before}
    assert new == {"curriculum__no_cot", "lora_adapter__no_cot", "eval_predictions__no_cot", "eval_scores__no_cot"}
    changed = {k for k in before if added[k] != before[k]}
    # the two tables over every variant list them; every other asset keeps its version
    assert changed == {"paper_comparison", "decoded_depth"}

    edited = _code_versions(_settings({**VARIANTS, "finetuned_llava": {**VARIANTS["finetuned_llava"], "finetune": {"lr": 0.001}}}))
    assert {k for k in before if edited[k] != before[k]} == {"lora_adapter__finetuned_llava"}


def test_text_coordinates_move_the_curriculum_version_and_the_default_keeps_the_old_one():
    from assets.curriculum import curriculum_version_fields
    from assets.versioning import code_version

    tokens = settings_from_dict(copy.deepcopy(BASE)).curriculum
    text = settings_from_dict({"curriculum": {**BASE["curriculum"], "coordinates": "text"}}).curriculum
    # the version a store built before the option existed recorded: every other field, as before
    before_the_option = {k: v for k, v in tokens.model_dump(mode="json").items() if k != "coordinates"}
    assert code_version("2", curriculum_version_fields(tokens)) == code_version("2", before_the_option)
    assert code_version("2", curriculum_version_fields(text)) != code_version("2", curriculum_version_fields(tokens))
