"""Codebook statistics across data-parallel ranks, so N processes train the codebook that one
process would on the same global batches.

Gradients are averaged by DistributedDataParallel; the EMA codebook is not a parameter, so
the quantizers call these helpers: per-code counts and sums are summed over ranks before the
EMA, and random choices (k-means seeds, dead-code restarts) are made on rank 0 from the
gathered global batch and broadcast. Every helper is the identity in a single process.
Ranks must hold consecutive slices of each global batch, rank 0 first, for the gathered
rows to be in the one-process order.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_rank0() -> bool:
    return world_size() == 1 or dist.get_rank() == 0


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks (in place, returned)."""
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather_rows(flat: torch.Tensor) -> torch.Tensor:
    """Every rank's rows [n_r, D], concatenated in rank order (ranks may hold different n_r)."""
    ws = world_size()
    if ws == 1:
        return flat
    n = torch.tensor([flat.shape[0]], device=flat.device)
    sizes = [torch.zeros_like(n) for _ in range(ws)]
    dist.all_gather(sizes, n)
    longest = int(max(int(s) for s in sizes))
    padded = flat.new_zeros((longest, *flat.shape[1:]))
    padded[: flat.shape[0]] = flat
    parts = [torch.empty_like(padded) for _ in range(ws)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes)])


def broadcast_from_rank0(t: torch.Tensor) -> torch.Tensor:
    """Rank 0's ``t`` on every rank (in place, returned)."""
    if world_size() > 1:
        dist.broadcast(t, src=0)
    return t


def order_drift_bound(*, steps: int, lr: float, sum_terms: int, dtype: torch.dtype, adam_eps: float = 1e-8) -> float:
    """How far (absolute, per unit of a tensor's magnitude) N ranks may end from one process after
    ``steps`` Adam steps: the two add the same terms in different orders (per-rank convs, DDP's sum
    of the ranks' gradients, the all-reduced EMA sums), nothing else.

    Two orders of a sum of K terms differ by at most 2(K-1)u * sum|terms| (u = eps/2, the
    recursive-summation bound); inputs in [0, 1] and weights < 1 keep |terms| <= 1 per term of a
    mean. Adam's step ``lr * m / (sqrt(v) + adam_eps)`` has slope at most ``lr / adam_eps`` in the
    gradient (at a zero gradient), so each step moves a parameter's difference by at most
    ``(lr / adam_eps) * 2K u``; ``sum_terms`` is the largest reduction of a step (the first conv's
    weight gradient: batch x pixels). In float64 this is ~1e-6 for a few steps of a 64-map batch;
    in float32 it exceeds any weight (code ties and Adam turn rounding into +-lr moves), so
    float32 runs agree only statistically, which is why the exactness tests train in float64.
    """
    u = torch.finfo(dtype).eps / 2
    return steps * (lr / adam_eps) * 2 * sum_terms * u
