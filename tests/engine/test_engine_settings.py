"""execution.engine config and the in-process engine (no Ray needed)."""

import pytest

from perception_tokens.engine import EngineSettings, batched, map_batches
from pipeline_lib.settings import settings_from_dict


def test_ray_engine_config_maps_to_engine_settings():
    s = settings_from_dict({"execution": {"engine": "ray", "ray": {"address": "ray://head:10001", "num_workers": 8,
                                                                    "num_gpus_per_worker": 1}}})
    e = s.execution.engine_settings()
    assert (e.kind, e.address, e.num_workers, e.num_gpus_per_worker, e.max_restarts) == ("ray", "ray://head:10001", 8, 1.0, 3)
    assert settings_from_dict({}).execution.engine_settings().kind == "inprocess"


def test_bad_engine_config_names_the_field():
    with pytest.raises(Exception, match="execution.engine"):
        settings_from_dict({"execution": {"engine": "spark"}})
    with pytest.raises(Exception, match="execution.ray.num_workers"):
        settings_from_dict({"execution": {"ray": {"num_workers": 0}}})


def test_inprocess_engine_builds_one_worker_and_keeps_order():
    built = []

    def make():
        built.append(1)
        return lambda batch: [x * 10 for x in batch]

    out = list(map_batches(make, iter(range(11)), batch_size=4))
    assert out == [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90, 100]] and len(built) == 1
    assert list(batched([], 3)) == []
    with pytest.raises(ValueError, match="batch size"):
        list(batched([1], 0))
    with pytest.raises(ValueError, match="unknown engine"):
        list(map_batches(make, [1], batch_size=1, engine=EngineSettings(kind="dask")))
