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
