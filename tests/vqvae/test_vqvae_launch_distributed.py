"""``vqvae.nproc_per_node`` > 1: the asset's torchrun path (training/vqvae/launch.py) on 2 gloo processes
trains the model the in-process path trains on the same global batches, and leaves no rank behind."""

from __future__ import annotations

import json

import cv2
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from perception_tokens.depth import decode_png
from training.vqvae.distributed import order_drift_bound
from training.vqvae.launch import RESULT_NAME, is_holdout, launch_training, parquet_depth_pngs
from training.vqvae.model import tiny_config
from training.vqvae.synthetic import synthetic_depth_maps
from training.vqvae.train import VQVAETrainConfig, rank_slice, train_vqvae

HOLDOUT = 0.2


def _tables(tmp_path, n: int = 48) -> list:
    """Two pseudo_depth-like Parquet files (image_id, depth_png) of 80x80 synthetic maps."""
    # jitter: flat synthetic regions give identical latents, and exact distance ties to restarted codes
    # would let 1e-8 float differences flip assignments
    rng = np.random.default_rng(5)
    maps = [np.clip(m.astype(np.int16) + rng.integers(-6, 7, m.shape), 0, 255).astype(np.uint8)
            for m in synthetic_depth_maps(n, height=80, width=80, seed=5)]
    paths = []
    for part, rows in enumerate((range(0, n // 2), range(n // 2, n))):
        table = pa.table({"image_id": [f"img{i:04d}" for i in rows],
                          "depth_png": [cv2.imencode(".png", maps[i])[1].tobytes() for i in rows]})
        pq.write_table(table, tmp_path / f"part{part}.parquet", row_group_size=7)
        paths.append(tmp_path / f"part{part}.parquet")
    return paths


def _configs():
    # restarts every 2 steps with a high threshold, so the run exercises synced restarts
    model = tiny_config(hidden_channels=(8, 16, 32), code_dim=32, dead_code_window=2, dead_code_threshold=4.0)
    # float64: the runs differ only by summation order, within order_drift_bound (float32 drifts by
    # CPU kernel, tests/vqvae/test_vqvae_distributed.py says why)
    train = VQVAETrainConfig(epochs=2, batch_size=12, lr=1e-3, seed=0, checkpoint_every_steps=2, device="cpu", dtype="float64")
    return model, train


def test_the_process_count_is_not_in_the_code_version():
    import dagster as dg

    from assets.vqvae import build_vqvae_assets
    from pipeline_lib.settings import settings_from_dict

    versions = {n: build_vqvae_assets(settings_from_dict({"vqvae": {"nproc_per_node": n}}))[0][0]
                .code_versions_by_key[dg.AssetKey("depth_vqvae")] for n in (1, 2)}
    other = build_vqvae_assets(settings_from_dict({"vqvae": {"lr": 5e-4}}))[0][0].code_versions_by_key[dg.AssetKey("depth_vqvae")]
    assert versions[1] == versions[2] != other
    # dtype float32 (the default) leaves the version as it was before the field existed; float64 trains other weights
    by_dtype = {d: build_vqvae_assets(settings_from_dict({"vqvae": {"dtype": d}}))[0][0]
                .code_versions_by_key[dg.AssetKey("depth_vqvae")] for d in ("float32", "float64")}
    assert by_dtype["float32"] == versions[1] != by_dtype["float64"]


def test_rank_slices_are_consecutive_and_cover_the_batch():
    assert [rank_slice(7, 2, r) for r in (0, 1)] == [slice(0, 4), slice(4, 7)]
    assert [rank_slice(6, 4, r) for r in range(4)] == [slice(0, 2), slice(2, 4), slice(4, 5), slice(5, 6)]


def test_two_torchrun_ranks_train_what_one_process_trains(tmp_path):
    tables = _tables(tmp_path)
    model_cfg, train_cfg = _configs()
    ids = [f"img{i:04d}" for i in range(48)]
    n_train = sum(not is_holdout(i, HOLDOUT) for i in ids)
    assert n_train % train_cfg.batch_size % 2 == 1, n_train  # the last global batch splits unevenly over 2 ranks

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as torchrun's ranks (OMP_NUM_THREADS=1)
    try:
        single = train_vqvae(model_cfg, train_cfg,
                             lambda: (decode_png(p) for p in parquet_depth_pngs(tables, holdout=False, fraction=HOLDOUT)),
                             tmp_path / "one", progress=False, log=lambda m: None)
    finally:
        torch.set_num_threads(before)
    lines: list[str] = []
    launched = launch_training(model_cfg, train_cfg, tables, tmp_path / "two", nproc=2, holdout_fraction=HOLDOUT,
                               log=lines.append)

    assert "--nproc_per_node=2" in lines[0]
    assert launched.step == single.step == 2 * -(-n_train // train_cfg.batch_size)
    assert json.loads((tmp_path / "two" / RESULT_NAME).read_text())["world_size"] == 2
    want, got = load_file(single.weights_path), load_file(launched.weights_path)
    assert want.keys() == got.keys()
    # float64 training within the order bound, then each side rounded once to the float32 file
    # (at most one float32 ulp apart on top: rtol 2^-23)
    bound = order_drift_bound(steps=single.step, lr=train_cfg.lr, sum_terms=train_cfg.batch_size * 80 * 80, dtype=torch.float64)
    for name in want:
        assert want[name].dtype == got[name].dtype
        if want[name].is_floating_point():
            atol = bound * max(1.0, float(want[name].abs().max()))
            torch.testing.assert_close(got[name], want[name], rtol=torch.finfo(torch.float32).eps, atol=atol, msg=name)
        else:
            assert torch.equal(got[name], want[name]), name
    # the global batch's loss, as one process logs it (float64 sums, within the bound); the same codes used and restarts
    np.testing.assert_allclose([h["loss"] for h in launched.loss_history], [h["loss"] for h in single.loss_history], rtol=bound)
    for a, b in zip(launched.epoch_metrics, single.epoch_metrics):
        assert a["dead_code_restarts"] == b["dead_code_restarts"] and a["usage"] == b["usage"] and a["n_images"] == b["n_images"] == n_train
    assert sum(m["dead_code_restarts"] for m in single.epoch_metrics) > 0


def test_an_interrupted_launch_leaves_no_rank_behind(tmp_path):
    tables = _tables(tmp_path, n=24)
    model_cfg, train_cfg = _configs()
    seen: dict[str, list[int]] = {}
    # processes earlier tests left under this one (log tailers, pools) are not this launch's
    earlier = {p.pid for p in psutil.Process().children(recursive=True)}

    def log(line: str) -> None:
        if line.startswith("depth VQ-VAE:"):  # rank 0 is training: torchrun and both ranks are up
            seen["pids"] = [p.pid for p in psutil.Process().children(recursive=True) if p.pid not in earlier]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        launch_training(model_cfg, train_cfg, tables, tmp_path / "run", nproc=2, holdout_fraction=HOLDOUT, log=log)
    assert len(seen["pids"]) >= 3  # torchrun + 2 ranks
    alive = [pid for pid in seen["pids"] if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
