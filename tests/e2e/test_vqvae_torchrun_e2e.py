"""``depth_vqvae`` with ``vqvae.nproc_per_node: 2``: the asset launches torchrun (2 gloo ranks on CPU) and
records the model that the in-process asset trains on the same demo world, within float tolerance."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file

from conftest import materialized_world, small_settings

SELECTION = "group:sources or key:pseudo_depth or key:depth_vqvae"


def _world(tmp_path_factory, nproc: int):
    workdir = tmp_path_factory.mktemp(f"nproc{nproc}")
    (workdir / "dagster_home").mkdir()
    settings = small_settings(workdir, vqvae={"epochs": 1, "batch_size": 8, "device": "cpu", "nproc_per_node": nproc,
                                              "checkpoint_every_steps": 0})
    with materialized_world(workdir, settings, SELECTION) as (_defs, instance):
        row = pq.read_table(workdir / "storage" / "depth_vqvae.parquet").to_pylist()[0]
        meta = instance.get_latest_materialization_event(dg.AssetKey("depth_vqvae")).asset_materialization.metadata
        return row, meta


def test_two_processes_from_the_asset_match_one(tmp_path_factory):
    one_row, one_meta = _world(tmp_path_factory, 1)
    two_row, two_meta = _world(tmp_path_factory, 2)

    assert one_meta["processes"].value == 1 and two_meta["processes"].value == 2
    assert one_meta["steps"].value == two_meta["steps"].value > 0
    assert json.loads(one_row["config_json"]) == json.loads(two_row["config_json"])
    want = load_file(f"{one_row['path']}/{one_row['weights_file']}")
    got = load_file(f"{two_row['path']}/{two_row['weights_file']}")
    assert want.keys() == got.keys()
    for name in (k for k in want if not k.startswith("quantizer.")):  # encoder, decoder
        assert torch.allclose(got[name].float(), want[name].float(), rtol=1e-4, atol=1e-5), name
    # The EMA codebook: the demo's flat depth regions give identical latent vectors, and k-means can
    # seed two codes on such duplicates, so those vectors sit at an exact tie between two codes and a
    # 1e-8 difference (a conv over 4 maps vs 8) picks the other one. Measured here: 4 vectors between
    # 2 of 128 codes. The strict all-codes check is tests/vqvae/test_vqvae_launch_distributed.py (no ties).
    counts_moved = int(((got["quantizer.cluster_size"] - want["quantizer.cluster_size"]).abs() > 1e-3).sum())
    assert counts_moved <= 2, counts_moved
    assert torch.allclose(got["quantizer.embedding"], want["quantizer.embedding"], atol=5e-3)
    for key in ("rmse", "usage_fraction", "closest_point_agreement"):
        assert abs(one_meta[key].value - two_meta[key].value) < 1e-2, (key, one_meta[key].value, two_meta[key].value)
