"""``profile: vpt`` and the VPT settings: the profile's values, a file's keys merged into the profile's
``vpt`` key by key, one grid for data and training, and unset VPT keys leaving every other config's
code versions as they were."""

import pytest

from pipeline_lib.settings import ConfigError, settings_from_dict
from training.finetune.config import FinetuneConfig


def test_the_vpt_profile_sets_vpts_run_and_a_file_changes_one_key():
    settings = settings_from_dict({"profile": "vpt", "finetune": {"checkpoint": "tiny", "vpt": {"reencoder": "tiny"}}})
    vpt = settings.finetune.vpt
    assert settings.finetune.family == "qwen2_vl"
    assert vpt == {"enabled": True, "grid": 8, "reencoder": "tiny", "control_tokens": 1, "mask_modeling": 0.5,
                   "align_epochs": 1.0}
    assert settings.curriculum.tasks == ["vpt_region", "vpt_reencode", "vpt_plain"] and settings.curriculum.vpt == {"grid": 8}
    config = FinetuneConfig.from_settings(settings.finetune.model_dump())
    assert config.vpt.enabled and config.vpt.mask_modeling == 0.5 and config.vpt.reencoder == "tiny"
    plain = settings_from_dict({"profile": "vpt"})
    assert plain.finetune.checkpoint == "Qwen/Qwen2-VL-2B-Instruct" and plain.finetune.vpt["reencoder"] == "facebook/dinov2-base"


@pytest.mark.parametrize("raw, problem", [
    ({"profile": "vpt", "curriculum": {"vpt": {"grid": 4}}}, "finetune.vpt.grid 8 differs from curriculum.vpt.grid 4"),
    ({"profile": "vpt", "finetune": {"vpt": {"enabled": False}}}, "finetune.vpt.enabled is not set"),
    ({"curriculum": {"tasks": ["vpt_region", "depth_atomic"]}}, "mix VPT tasks with others"),
    ({"finetune": {"family": "qwen2_5_vl", "vpt": {"enabled": True}}}, "trains on finetune.family qwen2_vl"),
    ({"profile": "vpt", "finetune": {"vpt": {"zoom": 2}}}, "zoom"),
    ({"profile": "vpt", "curriculum": {"vpt": {"align_fraction": 2.0}}}, "align_fraction"),
    ({"profile": "vpt", "finetune": {"vpt": {"mask_modeling": 1.5}}}, "mask_modeling"),
])
def test_inconsistent_vpt_settings_are_refused_naming_the_setting(raw, problem):
    with pytest.raises(ConfigError, match=problem):
        settings_from_dict(raw)


def test_unset_vpt_keys_stay_out_of_the_sections_dumps():
    settings = settings_from_dict({})
    assert "vpt" not in settings.finetune.model_dump() and "vpt" not in settings.curriculum.model_dump()


def test_the_vpt_experiment_config_puts_k_and_mask_modeling_side_by_side():
    from pathlib import Path

    from pipeline_lib.settings import load_settings
    from pipeline_lib.settings_experiment import variant_asset_name

    settings = load_settings(Path(__file__).resolve().parents[2] / "configs" / "demo-vpt-experiment.yaml")
    seen = {}
    for name in settings.variant_names():
        variant = settings.variant_settings(name)
        vpt = variant.finetune.vpt
        assert vpt["enabled"] and vpt["reencoder"] == "tiny" and variant.curriculum.vpt["grid"] == vpt["grid"]
        seen[name] = (vpt["grid"], vpt.get("mask_modeling", 0.5))
        assert variant_asset_name("lora_adapter", name) == f"lora_adapter__{name}"
    assert seen == {"k4": (4, 0.5), "k8": (8, 0.5), "k16": (16, 0.5), "k8_no_mask": (8, 0.0)}
