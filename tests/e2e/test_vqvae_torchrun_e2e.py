"""``depth_vqvae`` with ``vqvae.nproc_per_node: 2``: the asset launches torchrun (2 gloo ranks on CPU) and
records the model that the in-process asset trains on the same demo world, within the tolerance the
arithmetic allows.

Both train in float64 (``vqvae.dtype``): in float32 the two runs' different summation orders (a conv
over 4 maps vs 8, DDP's sum of two half-batch gradients) drift by 1e-4 or more within a few Adam
steps, by CPU kernel, and the demo's flat depth regions put latent vectors at near-ties between codes
that such differences flip. In float64 only the order differs (training/vqvae/distributed.py
``order_drift_bound``); each side's weights are then rounded once to the float32 file."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file

from training.vqvae.distributed import order_drift_bound

from conftest import materialized_world, small_settings

SELECTION = "group:sources or key:pseudo_depth or key:depth_vqvae"
BATCH = 8


def _world(tmp_path_factory, nproc: int):
    workdir = tmp_path_factory.mktemp(f"nproc{nproc}")
    (workdir / "dagster_home").mkdir()
    settings = small_settings(workdir, vqvae={"epochs": 1, "batch_size": BATCH, "device": "cpu", "nproc_per_node": nproc,
                                              "checkpoint_every_steps": 0, "dtype": "float64"})
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
    config = json.loads(one_row["config_json"])
    image_size = config["model"]["image_size"]
    bound = order_drift_bound(steps=one_meta["steps"].value, lr=config["train"]["lr"],
                              sum_terms=BATCH * image_size * image_size, dtype=torch.float64)
    for name in want:  # encoder, decoder and the EMA codebook's buffers
        if want[name].is_floating_point():
            atol = bound * max(1.0, float(want[name].abs().max()))
            torch.testing.assert_close(got[name], want[name], rtol=torch.finfo(torch.float32).eps, atol=atol, msg=name)
        else:
            assert torch.equal(got[name], want[name]), name
    # measured on the same held-out maps (the metrics are functions of the weights compared above; a
    # float32 evaluation can still flip a code at an exact tie, so they are not compared here)
    assert one_meta["heldout_images"].value == two_meta["heldout_images"].value > 0
