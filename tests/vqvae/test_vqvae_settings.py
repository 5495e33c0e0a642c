"""vqvae settings: the aurora preset brings the reference's model and schedule; YAML values win."""

import pytest
from pydantic import ValidationError

from assets.vqvae import vqvae_model_config
from pipeline_lib.settings import VQVAESettings
from training.vqvae.model import VQVAEConfig, tiny_config


def test_aurora_preset_is_the_reference_model_and_schedule():
    vq = VQVAESettings.model_validate({"preset": "aurora"})
    # ait_depth_vqvae.py:26-31 and train_depth_vqvae_dist.py:116,168; all maps (no hold-out)
    assert (vq.epochs, vq.batch_size, vq.lr, vq.lr_decay_gamma, vq.lr_decay_every, vq.drop_last, vq.holdout_fraction) == (
        20, 8, 3e-4, 0.98, 500, True, 0.0)
    cfg = vqvae_model_config(vq)
    assert cfg == VQVAEConfig.aurora()
    assert (cfg.architecture, cfg.resize, cfg.input_range, cfg.kmeans_init, cfg.dead_code_threshold) == (
        "aurora", "nearest", "minus_one_one", False, 0.0)


def test_tiny_preset_keeps_the_project_variant():
    vq = VQVAESettings.model_validate({})
    assert (vq.epochs, vq.batch_size, vq.lr_decay_every, vq.holdout_fraction) == (30, 32, 0, 0.15)
    cfg = vqvae_model_config(vq)
    assert cfg == tiny_config() and (cfg.architecture, cfg.resize, cfg.kmeans_init) == ("project", "area", True)


def test_values_in_the_file_win_over_the_preset():
    vq = VQVAESettings.model_validate({"preset": "aurora", "batch_size": 64, "holdout_fraction": 0.1,
                                       "overrides": {"resize": "area"}})
    assert vq.batch_size == 64 and vq.holdout_fraction == 0.1 and vq.epochs == 20
    assert vqvae_model_config(vq).resize == "area"


def test_zero_epochs_needs_an_init_checkpoint():
    with pytest.raises(ValidationError, match="vqvae.epochs 0 trains nothing"):
        VQVAESettings.model_validate({"preset": "aurora", "epochs": 0})
    assert VQVAESettings.model_validate({"epochs": 0, "init_checkpoint": "vae-final.pt"}).epochs == 0
