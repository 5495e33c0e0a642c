"""Two data-parallel processes (gloo, CPU) train the codebook one process trains on the same
global batches: k-means init, EMA counts and sums, and dead-code restarts all agree.

Why the comparison runs in float64. The two runs add the same terms in different orders: the
ranks' convs see 4 maps where the one process sees 8 (oneDNN picks its blocking by shape and
CPU), DDP sums two half-batch gradients where one process reduces all 8 maps at once, and the
EMA sums arrive as two partial matmuls added by gloo. In float32 those orders differ by ~1e-7
relative per sum, and training amplifies that: a latent vector near a tie between two codes
flips its code (a different commitment gradient and EMA update), and Adam divides each
gradient by its own running RMS, so a parameter whose gradient is at rounding level moves
+-lr either way. Measured on a 2-core x86 box: 1e-4 to 8e-4 after 6 steps, across every
layer; on the machine the test was written on it stayed under rtol 1e-4. Nothing there is
invariant. In float64 the same orders differ by ~1e-16, far below Adam's eps and any code tie,
and the runs agree to a bound derived from the arithmetic (TOLERANCE below).
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from training.vqvae.data import model_input
from training.vqvae.distributed import order_drift_bound
from training.vqvae.model import DepthVQVAE, VQVAEConfig, tiny_config
from training.vqvae.synthetic import synthetic_depth_maps

STEPS, GLOBAL_BATCH, LR = 6, 8, 1e-3
ADAM_EPS = 1e-8  # torch.optim.Adam's default
# The largest reduction in a step: the first conv's weight gradient sums over every input pixel.
SUM_TERMS = GLOBAL_BATCH * 80 * 80
# training/vqvae/distributed.py order_drift_bound derives it: summation-order error 2Ku per step,
# times Adam's steepest slope lr/eps, over STEPS steps: 6 * 1e5 * 2 * 51,200 * 1.1e-16 = 6.8e-6,
# scaled by the tensor's magnitude where it exceeds 1 (the EMA sums). Measured: <= 3e-16 on the
# weights, 5e-15 on the aurora EMA sums (magnitude 17), while float32 drifts 1e-4..8e-4 (beyond it).
TOLERANCE = order_drift_bound(steps=STEPS, lr=LR, adam_eps=ADAM_EPS, sum_terms=SUM_TERMS, dtype=torch.float64)


def _config(arch: str) -> VQVAEConfig:
    if arch == "aurora":
        return VQVAEConfig.aurora(image_size=80, num_downsamples=3, hidden_channels=(8, 16, 32), code_dim=32,
                                  sync_codebook=True)
    # restarts every 2 steps with a high threshold, so the test exercises them
    return tiny_config(hidden_channels=(8, 16, 32), code_dim=32, dead_code_window=2, dead_code_threshold=4.0)


def _global_batches(cfg: VQVAEConfig, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    maps = synthetic_depth_maps(STEPS * GLOBAL_BATCH, height=80, width=80, seed=11)
    return [model_input(maps[i : i + GLOBAL_BATCH], cfg).to(dtype) for i in range(0, len(maps), GLOBAL_BATCH)]


def _train(model: torch.nn.Module, batches, rank: int, world: int) -> int:
    opt = torch.optim.Adam(model.parameters(), lr=LR, eps=ADAM_EPS)
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    restarts = 0
    per_rank = GLOBAL_BATCH // world
    for x in batches:
        out = model(x[rank * per_rank : (rank + 1) * per_rank])  # consecutive slices, rank 0 first
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        restarts += getattr(inner.vq, "last_restarted", 0)
    return restarts


def _worker(rank: int, world: int, arch: str, rendezvous: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        cfg = _config(arch)
        torch.manual_seed(0)
        model = DistributedDataParallel(DepthVQVAE(cfg).double(), broadcast_buffers=False)
        restarts = _train(model, _global_batches(cfg, torch.float64), rank, world)
        state = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
        torch.save({"state": state, "restarts": torch.tensor(restarts)}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("arch", ["project", "aurora"])
def test_two_ranks_train_the_codebook_of_one_process(tmp_path, arch):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = _config(arch)
        torch.manual_seed(0)
        single = DepthVQVAE(cfg).double()
        restarts = _train(single, _global_batches(cfg, torch.float64), 0, 1)
    finally:
        torch.set_num_threads(before)

    mp.spawn(_worker, args=(2, arch, str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    want = single.state_dict()
    for name in want:  # every tensor: the codebook's buffers, the encoder and the decoder
        a, b = ranks[0]["state"][name], ranks[1]["state"][name]
        assert torch.equal(a, b), f"ranks disagree on {name}"
        if not a.is_floating_point():
            assert torch.equal(a, want[name]), name
            continue
        bound = TOLERANCE * max(1.0, float(want[name].abs().max()))
        gap = float((a - want[name]).abs().max())
        assert gap <= bound, f"{name} differs from one process by {gap:.3g} (> {bound:.3g})"
    if arch == "project":
        assert restarts > 0 and int(ranks[0]["restarts"]) == restarts  # restarts happened, the same ones


def test_without_sync_each_rank_keeps_its_own_codebook(tmp_path):
    """The reference's DDP behaviour (aurora's default, sync_codebook False): codebooks diverge."""
    assert VQVAEConfig.aurora().sync_codebook is False
    mp.spawn(_worker_unsynced, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True)["state"]["_vq_vae._embedding"] for r in (0, 1))
    assert not torch.allclose(a, b)


def _worker_unsynced(rank: int, rendezvous: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    try:
        cfg = _config("aurora")
        cfg.sync_codebook = False
        torch.manual_seed(0)
        model = DistributedDataParallel(DepthVQVAE(cfg), broadcast_buffers=False)
        _train(model, _global_batches(cfg)[:2], rank, 2)
        torch.save({"state": {k: v.clone() for k, v in model.module.state_dict().items()}}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_single_process_helpers_are_the_identity():
    from training.vqvae.distributed import all_reduce_sum, broadcast_from_rank0, gather_rows, is_rank0, world_size

    t = torch.arange(6.0).reshape(3, 2)
    assert world_size() == 1 and is_rank0()
    assert torch.equal(all_reduce_sum(t.clone()), t) and torch.equal(gather_rows(t), t) and torch.equal(broadcast_from_rank0(t.clone()), t)
