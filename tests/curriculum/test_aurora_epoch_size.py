"""profile aurora uses the notebooks' epoch size N: total_length = 20000 for the depth model
(create_depth_annealing_data.ipynb cell 3) and 5000 for counting (create_bbox_annealing_data.ipynb
cell 7). The project profile keeps N = the atomic pool's size; a value in the file wins."""

import pytest

from pipeline_lib.settings import settings_from_dict
from pipeline_lib.settings_sections import ConfigError

AURORA_ON_DEMO = {"profile": "aurora", "depth": {"preset": "custom", "teacher": "ground_truth"}, "vqvae": {"preset": "tiny"}}
COUNT_TASKS = ["count_atomic", "count_cot", "count_direct"]


def test_aurora_depth_model_epoch_is_20000_samples():
    assert settings_from_dict(AURORA_ON_DEMO).curriculum.epoch_size == 20000


def test_aurora_counting_model_epoch_is_5000_samples():
    assert settings_from_dict({**AURORA_ON_DEMO, "curriculum": {"tasks": COUNT_TASKS}}).curriculum.epoch_size == 5000


def test_project_profile_keeps_the_atomic_pool_size_and_the_file_wins():
    assert settings_from_dict({}).curriculum.epoch_size is None
    assert settings_from_dict({**AURORA_ON_DEMO, "curriculum": {"epoch_size": 64}}).curriculum.epoch_size == 64


def test_tasks_of_two_skills_need_an_explicit_epoch_size():
    with pytest.raises(ConfigError, match="set curriculum.epoch_size"):
        settings_from_dict({**AURORA_ON_DEMO, "curriculum": {"tasks": ["depth_atomic", *COUNT_TASKS]}})
