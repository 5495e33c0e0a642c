"""profile aurora: the global batch is the reference's 128 (16 per device x the paper's 8 GPUs x
accumulation 1, finetune_task_lora_depth_annealing.sh:24,26), an explicit setting resolved into
grad_accum; new embedding rows start as the reference's resize_token_embeddings leaves them on
transformers 4.37.2 (train.py:981): the model's own init, N(0, initializer_range)."""

import pytest
import torch

from perception_tokens.vocab import skill_tokens
from pipeline_lib.settings import FinetuneSettings, settings_from_dict
from pipeline_lib.settings_sections import ConfigError
from training.finetune.config import FinetuneConfig
from training.finetune.tokens import add_perception_tokens, add_tokens, initializer_range
from training.llava.model import load_llava

AURORA_ON_DEMO = {"profile": "aurora", "depth": {"preset": "custom", "teacher": "ground_truth"}, "vqvae": {"preset": "tiny"}}


def test_aurora_global_batch_is_128_as_per_device_times_processes_times_accumulation():
    one_gpu = settings_from_dict(AURORA_ON_DEMO).finetune
    assert (one_gpu.per_device_batch_size, one_gpu.nproc_per_node, one_gpu.grad_accum) == (16, 1, 8)
    assert one_gpu.effective_global_batch_size == 128
    eight_gpus = settings_from_dict({**AURORA_ON_DEMO, "finetune": {"nproc_per_node": 8}}).finetune
    assert (eight_gpus.grad_accum, eight_gpus.effective_global_batch_size) == (1, 128)
    assert FinetuneConfig.from_settings(one_gpu.model_dump()).grad_accum == 8  # what the trainer gets


def test_project_profile_keeps_its_batch_and_bad_global_batches_are_named():
    project = settings_from_dict({}).finetune
    assert (project.global_batch_size, project.grad_accum, project.effective_global_batch_size) == (None, 1, 4)
    with pytest.raises(ValueError, match="not a multiple of per_device_batch_size 16 x nproc_per_node 3"):
        FinetuneSettings(per_device_batch_size=16, nproc_per_node=3, global_batch_size=128)
    with pytest.raises(ValueError, match="grad_accum 2 contradicts global_batch_size 128"):
        FinetuneSettings(per_device_batch_size=16, grad_accum=2, global_batch_size=128)
    with pytest.raises(ConfigError, match="global_batch_size"):
        settings_from_dict({**AURORA_ON_DEMO, "finetune": {"per_device_batch_size": 48}})


def test_aurora_new_rows_are_drawn_from_the_models_own_init():
    assert settings_from_dict(AURORA_ON_DEMO).finetune.new_row_init == "model_init"
    assert settings_from_dict({}).finetune.new_row_init == "mean_noise"
    model, processor = load_llava("tiny")
    std = initializer_range(model)
    assert std == model.config.text_config.initializer_range == 0.02
    old_mean = model.get_input_embeddings().weight.detach().mean(0).clone()
    config = FinetuneConfig(new_row_init="model_init", seed=3)
    tm = add_tokens(model, processor, config, tokens=skill_tokens(["depth"]))
    ids = torch.tensor(tm.id_list())
    for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
        rows = layer.weight.detach()[ids].float()
        assert rows.shape == (130, 64)
        assert abs(rows.mean().item()) < 0.1 * std  # centred on 0, not on the old rows' mean
        assert abs(rows.std().item() - std) < 0.05 * std  # 8320 draws: the sample std is within 5% of 0.02
    # seeded: a second model gets the same rows
    again, processor2 = load_llava("tiny")
    add_tokens(again, processor2, config, tokens=skill_tokens(["depth"]))
    assert torch.equal(again.get_input_embeddings().weight[ids], model.get_input_embeddings().weight[ids])
    # the project's init stays mean + noise: its rows are centred on the old rows' mean
    project, processor3 = load_llava("tiny")
    tm3 = add_perception_tokens(project, processor3.tokenizer, tokens=skill_tokens(["depth"]), seed=3)
    rows = project.get_input_embeddings().weight.detach()[torch.tensor(tm3.id_list())].float()
    assert torch.allclose(rows.mean(0), old_mean, atol=0.3 * rows.std(0).max().item())
