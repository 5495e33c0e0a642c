"""profile: perceptio: Perceptio's settings at every stage where the paper gives them; file values win,
one level down too (finetune.segmentation); both model families load under it."""

from __future__ import annotations

import pytest

from pipeline_lib.profiles import apply_profile
from pipeline_lib.settings import settings_from_dict


def test_the_profile_sets_each_stage():
    s = settings_from_dict({"profile": "perceptio"})
    assert s.datasets.refer_datasets == ["refcoco", "refcoco+", "refcocog"]
    assert (s.depth.teacher, s.depth.version, s.depth.model) == (
        "depth_anything_hf", 2, "depth-anything/Depth-Anything-V2-Large-hf")
    assert (s.vqvae.preset, s.vqvae.data) == ("aurora", "refer_train")
    assert (s.curriculum.style, s.curriculum.tasks, s.curriculum.epochs) == ("perceptio", ["refer_segment"], 1)
    assert s.finetune.segmentation == {"enabled": True, "sam2_checkpoint": "facebook/sam2.1-hiera-large"}
    assert s.finetune.depth_losses == {"marker": 1.0, "token": 1.0, "count": 1.0, "reconstruction": 1.0}
    assert s.finetune.epochs == 1.0
    assert s.finetune.checkpoint == "tiny" and s.finetune.family is None  # LLaVA by default, detected from the checkpoint


def test_file_values_win_and_nested_mappings_merge():
    s = settings_from_dict({"profile": "perceptio", "finetune": {"segmentation": {"sam2_checkpoint": "tiny"},
                                                                  "depth_losses": {"count": 0.5}, "family": "qwen2_5_vl"},
                            "depth": {"teacher": "ground_truth"}})
    assert s.finetune.segmentation == {"enabled": True, "sam2_checkpoint": "tiny"}
    assert s.finetune.depth_losses == {"marker": 1.0, "token": 1.0, "count": 0.5, "reconstruction": 1.0}
    assert s.finetune.family == "qwen2_5_vl" and s.depth.teacher == "ground_truth"
    # the aurora profile is unchanged by the nested merge (its only nested mapping is epoch_size_by_skill)
    assert apply_profile({"profile": "aurora"})["curriculum"]["epoch_size_by_skill"] == {"depth": 20000, "count": 5000}


def test_the_perceptio_style_makes_only_its_tasks():
    with pytest.raises(ValueError, match="refer_segment required"):
        settings_from_dict({"profile": "perceptio", "curriculum": {"tasks": ["depth_atomic", "depth_cot"]}})
    with pytest.raises(ValueError, match="refer_segment needs curriculum.style perceptio"):
        settings_from_dict({"curriculum": {"tasks": ["refer_segment"]}})
    mixed = settings_from_dict({"profile": "perceptio", "curriculum": {"tasks": ["refer_segment", "depth_atomic"]}})
    assert mixed.curriculum.tasks == ["refer_segment", "depth_atomic"]
