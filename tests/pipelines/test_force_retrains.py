"""``ptok materialize depth_vqvae --force`` trains again, and a data version depends on content only.

Before the fix a forced run "resumed" the finished training state (training nothing) and still
wrote a new data version, because the manifest row carried ``created_at``: every
``depth_tokens`` partition and the evaluation below it went stale for nothing.
"""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq
import pytest

from pipeline_lib.settings import settings_from_dict
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph

UPSTREAM = "group:sources or key:pseudo_depth"
TINY_DEMO = {"n_ade20k": 3, "n_lvis": 2, "n_refcoco": 2, "seed": 0, "width": 96, "height": 72}


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    settings = settings_from_dict({
        "storage": {"root": str(tmp_path / "storage")},
        "demo": {"enabled": True, "root": str(tmp_path / "demo"), **TINY_DEMO},
        "datasets": {"num_shards": 1},
        "vqvae": {"epochs": 1, "batch_size": 4, "device": "cpu", "checkpoint_every_steps": 0, "holdout_fraction": 0.0},
    })
    from pipelines.instance import get_instance

    return build_definitions(settings), get_instance(), tmp_path / "storage"


def _latest(instance, key: str):
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    return event.asset_materialization


def _statuses(report) -> dict[str, str]:
    return {s.asset: s.status for s in report.steps}


def test_forced_depth_vqvae_retrains_to_the_same_data_version_and_keeps_tokens_fresh(world):
    defs, instance, storage = world
    first = materialize_graph(defs, instance, f"{UPSTREAM} or key:depth_vqvae or key:depth_tokens", log=lambda m: None)
    assert not first.failed, first.failed
    before = _latest(instance, "depth_vqvae")
    row_before = pq.read_table(storage / "depth_vqvae.parquet").to_pylist()[0]
    assert before.metadata["steps"].value > 0 and before.metadata["resumed_from_step"].value == 0

    forced = materialize_graph(defs, instance, "key:depth_vqvae", force=True, log=lambda m: None)
    assert _statuses(forced) == {"depth_vqvae": "materialized"}
    after = _latest(instance, "depth_vqvae")
    # trained again from the seed: no resume of the finished state (before the fix: resumed at the last step)
    assert after.metadata["resumed_from_step"].value == 0
    assert after.metadata["steps"].value == before.metadata["steps"].value
    # same seed, one CPU process: the same weights, so the same row and the same data version
    row_after = pq.read_table(storage / "depth_vqvae.parquet").to_pylist()[0]
    assert row_after == row_before and "created_at" not in row_after
    assert after.tags["dagster/data_version"] == before.tags["dagster/data_version"]
    assert "created_at" in after.metadata  # the time is kept, outside the data version

    # downstream stays fresh: the runner skips every depth_tokens partition
    again = materialize_graph(defs, instance, "key:depth_tokens", log=lambda m: None)
    assert again.steps and all(s.status == "skipped (fresh)" for s in again.steps), [(s.asset, s.partition, s.status) for s in again.steps]
