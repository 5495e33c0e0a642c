"""The project's EMA vector quantizer (k-means init, dead-code restarts, rank-synchronised EMAs).

The reference's quantizer (``architecture: aurora``) is ``aurora.ReferenceEMAQuantizer``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.vqvae.distributed import all_reduce_sum, broadcast_from_rank0, gather_rows, is_rank0, world_size


class EMAVectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantizer whose codebook follows EMAs of its assigned vectors.

    The codebook is not trained by gradients: every training forward updates, per code k,
    an EMA of the number of vectors assigned to it (``cluster_size``) and of their sum
    (``embed_sum``); the code is their ratio, with Laplace smoothing of the counts so that a
    code with no assignments never divides by zero. The encoder receives gradients through
    the straight-through estimator and is pulled toward its codes by the commitment loss.

    All state lives in buffers so ``state_dict`` / safetensors carry it.
    Updates happen only in training mode; ``eval()`` or inference only reads the codebook.
    Random choices (k-means seeds, dead-code restarts) use torch's global RNG, which the
    trainer seeds and checkpoints. Under torch.distributed (``sync_ranks``) counts and sums
    are summed over ranks and random choices are made on rank 0 from the gathered global
    batch (``distributed.py``), so N ranks train the codebook one process would.
    """

    def __init__(
        self,
        codebook_size: int,
        code_dim: int,
        *,
        decay: float = 0.99,
        eps: float = 1e-5,
        dead_code_threshold: float = 1.0,
        dead_code_window: int = 20,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        sync_ranks: bool = True,
    ) -> None:
        super().__init__()
        self.sync_ranks = sync_ranks
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.decay = decay
        self.eps = eps
        self.dead_code_threshold = dead_code_threshold
        self.dead_code_window = dead_code_window
        self.kmeans_iters = kmeans_iters
        embedding = torch.randn(codebook_size, code_dim)
        self.register_buffer("embedding", embedding)
        # cluster_size starts at 1 (not 0) so the first EMA step blends toward the data
        # instead of dividing the decayed sum by a near-zero count.
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", embedding.clone())
        self.register_buffer("window_counts", torch.zeros(codebook_size))
        self.register_buffer("window_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self.last_restarted = 0  # codes restarted by the latest training step (for logs)

    # -- lookups

    def nearest_codes(self, flat: torch.Tensor, codebook: torch.Tensor | None = None) -> torch.Tensor:
        """Index of the nearest code (squared L2) for each row of ``flat`` [N, D] -> [N]."""
        codebook = self.embedding if codebook is None else codebook
        dist = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ codebook.t()
            + codebook.pow(2).sum(1).unsqueeze(0)
        )
        return dist.argmin(dim=1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [...] -> code vectors [..., D]."""
        return F.embedding(codes, self.embedding)

    # -- training-time updates

    def _one_hot(self, codes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.one_hot(codes, self.codebook_size).to(dtype)

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        if self.sync_ranks and world_size() > 1:
            flat = gather_rows(flat)
            if is_rank0():
                self._kmeans_fit(flat)
            for buf in (self.embedding, self.cluster_size, self.embed_sum):
                broadcast_from_rank0(buf)
            self.initialized.fill_(True)
            return
        self._kmeans_fit(flat)

    @torch.no_grad()
    def _kmeans_fit(self, flat: torch.Tensor) -> None:
        n = flat.shape[0]
        k = self.codebook_size
        idx = torch.randperm(n, device=flat.device)[:k] if n >= k else torch.randint(0, n, (k,), device=flat.device)
        centers = flat[idx].clone()
        counts = torch.zeros(k, device=flat.device, dtype=flat.dtype)
        for _ in range(self.kmeans_iters):
            onehot = self._one_hot(self.nearest_codes(flat, centers), flat.dtype)
            counts = onehot.sum(0)
            sums = onehot.t() @ flat
            filled = counts > 0  # an empty cluster keeps its seed point
            centers[filled] = sums[filled] / counts[filled].unsqueeze(1)
        sizes = counts.clamp(min=1.0)
        self.embedding.copy_(centers)
        self.cluster_size.copy_(sizes)
        self.embed_sum.copy_(centers * sizes.unsqueeze(1))
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        # one-hot matmul rather than index_add_: deterministic on GPU as well
        onehot = self._one_hot(codes, flat.dtype)
        counts = onehot.sum(0)
        sums = onehot.t() @ flat
        if self.sync_ranks:
            all_reduce_sum(counts)
            all_reduce_sum(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        self.embedding.copy_(self.embed_sum / smoothed.unsqueeze(1))
        self.window_counts.add_(counts)
        self.window_steps.add_(1)

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor) -> int:
        """At the end of each window, move codes used < threshold times onto batch vectors."""
        if int(self.window_steps) < self.dead_code_window:
            return 0
        dead = self.window_counts < self.dead_code_threshold
        n_dead = int(dead.sum())
        if n_dead:  # window_counts are global (summed counts): every rank finds the same dead codes
            sync = self.sync_ranks and world_size() > 1
            if sync:
                flat = gather_rows(flat)
            n = flat.shape[0]
            fresh = flat.new_zeros((n_dead, flat.shape[1]))
            if not sync or is_rank0():
                if n >= n_dead:
                    idx = torch.randperm(n, device=flat.device)[:n_dead]
                else:
                    idx = torch.randint(0, n, (n_dead,), device=flat.device)
                fresh = flat[idx]
            if sync:
                fresh = broadcast_from_rank0(fresh.contiguous())
            self.embedding[dead] = fresh
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0
        self.window_counts.zero_()
        self.window_steps.zero_()
        return n_dead

    # -- forward

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z [B, D, H, W] -> (straight-through quantized z [B, D, H, W], codes [B, H, W], commitment loss).

        In training mode this also initialises the codebook (k-means, first batch), updates
        the EMAs and restarts dead codes.
        """
        b, d, h, w = z.shape
        if d != self.code_dim:
            raise ValueError(f"quantizer expects {self.code_dim} channels, got {d}")
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        flat_detached = flat.detach()
        if self.training and not bool(self.initialized):
            self._kmeans_init(flat_detached)
        codes = self.nearest_codes(flat_detached)
        quantized = self.lookup(codes).detach()
        self.last_restarted = 0
        if self.training:
            self._ema_update(flat_detached, codes)
            self.last_restarted = self._restart_dead_codes(flat_detached)
        commit_loss = F.mse_loss(flat, quantized)
        straight_through = flat + (quantized - flat).detach()
        z_q = straight_through.reshape(b, h, w, d).permute(0, 3, 1, 2).contiguous()
        return z_q, codes.reshape(b, h, w), commit_loss
