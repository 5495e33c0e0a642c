"""The training config is built from the ``finetune`` settings section by one constructor: every settings
field reaches the config or is named as not-for-training, and a new field needs no hand-written copy."""

import json
from dataclasses import fields

import pytest

from assets.finetune import finetune_config_dict
from pipeline_lib.settings import FinetuneSettings, load_settings
from training.finetune.config import NOT_FOR_TRAINING, SETTINGS_RENAMED, FinetuneConfig


def test_every_settings_field_is_consumed_or_listed_as_not_for_training():
    config_fields = {f.name for f in fields(FinetuneConfig)}
    for name in FinetuneSettings.model_fields:
        assert name in config_fields or name in SETTINGS_RENAMED or name in NOT_FOR_TRAINING, name
    # the lists name only real settings fields (a stale entry would hide a rename)
    assert set(SETTINGS_RENAMED) | NOT_FOR_TRAINING <= set(FinetuneSettings.model_fields)


def test_settings_values_land_in_the_config():
    section = FinetuneSettings(checkpoint="tiny-untied", family="qwen2_5_vl", epochs=2.5, max_steps=7, per_device_batch_size=3,
                               grad_accum=2, lr=1e-3, projector_lr=3e-5, warmup_ratio=0.1, save_steps=11, logging_steps=4,
                               lora_r=8, lora_alpha=16, lora_dropout=0.1, new_token_mode="modules_to_save",
                               depth_losses={"token": 0.5}, seed=5, image_resize="squash336_nearest",
                               conversation="vicuna_v1", vocabulary="per_skill", nproc_per_node=2, span_samples=3)
    config = FinetuneConfig.from_settings(section.model_dump())
    assert (config.checkpoint, config.family, config.epochs, config.max_steps) == ("tiny-untied", "qwen2_5_vl", 2.5, 7)
    assert (config.per_device_batch_size, config.grad_accum, config.save_steps, config.logging_steps, config.seed) == (3, 2, 11, 4, 5)
    assert config.learning_rate == 1e-3 and config.projector_learning_rate == 3e-5 and config.warmup_ratio == 0.1
    assert (config.lora.r, config.lora.alpha, config.lora.dropout, config.lora.new_token_mode) == (8, 16, 0.1, "modules_to_save")
    assert config.depth_losses.token == 0.5 and config.depth_losses.marker == 0.0
    assert (config.image_size, config.conversation, config.vocabulary) == (336, "vicuna_v1", "per_skill")
    assert FinetuneConfig.from_settings(FinetuneSettings().model_dump()).image_size is None


def test_a_new_settings_field_reaches_the_config_without_a_copy():
    class WithGradNorm(FinetuneSettings):
        max_grad_norm: float = 0.25
        lr_scheduler: str = "linear"

    config = finetune_config_dict(WithGradNorm())
    assert config["max_grad_norm"] == 0.25 and config["lr_scheduler"] == "linear"
    assert finetune_config_dict(FinetuneSettings())["max_grad_norm"] == FinetuneConfig().max_grad_norm == 1.0


def test_a_settings_field_the_config_does_not_know_is_an_error_naming_it():
    class WithMystery(FinetuneSettings):
        mystery_knob: int = 3

    with pytest.raises(ValueError, match="mystery_knob"):
        finetune_config_dict(WithMystery())


def test_the_worker_reads_back_what_the_asset_writes():
    section = load_settings().finetune  # the demo config (PTOK_CONFIG)
    written = json.loads(json.dumps(finetune_config_dict(section)))
    assert FinetuneConfig.from_dict(written) == FinetuneConfig.from_settings(section.model_dump())
    assert written["lr"] == section.lr and written["lora"]["r"] == section.lora_r


def test_segmentation_settings_reach_the_config_and_an_unset_one_leaves_the_dump_as_before():
    section = FinetuneSettings(segmentation={"enabled": True, "dice_weight": 1.0})
    config = FinetuneConfig.from_settings(section.model_dump())
    assert config.segmentation.enabled and config.segmentation.dice_weight == 1.0 and config.segmentation.bce_weight == 2.0
    assert FinetuneConfig.from_dict(json.loads(json.dumps(config.to_dict()))).segmentation == config.segmentation
    # unset: not in the dump, so the finetune asset's code version is what it was before the field
    assert "segmentation" not in FinetuneSettings().model_dump(mode="json")
    assert FinetuneConfig.from_settings(FinetuneSettings().model_dump()).segmentation.enabled is False
    with pytest.raises(ValueError, match="segmentation"):
        FinetuneSettings(segmentation={"enable": True})
