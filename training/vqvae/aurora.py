"""The reference depth VQ-VAE (AiT ``VQVAE`` as Aurora trained it), layer for layer.

Everything here follows ``AiT/vae/models/VQVAE.py`` of the Aurora-perception repository so
that a reference ``vae-final.pt`` loads with strict key matching and gives the same codes:

* encoder (VQVAE.py:241-252): Conv4x4/2(channels -> h) ReLU, then ``log2(ratio) - 1`` times
  Conv4x4/2(d -> 2d) ReLU, ``num_resnet_blocks`` x ``ResBlock_v1``, Conv1x1(-> codebook_dim);
* decoder (VQVAE.py:254-269): Conv1x1(codebook_dim -> h*ratio/2) ReLU, the ResBlocks,
  ConvT4x4/2 keeping the width, ``log2(ratio) - 1`` ConvT4x4/2 halving it, Conv1x1(-> channels);
* ``ResBlock_v1`` (VQVAE.py:161-173): x + conv1(relu(conv3(relu(conv3(x)))));
* ``VectorQuantizerEMA`` (VQVAE.py:58-140): buffers ``_embedding`` and ``_ema_w`` drawn from
  N(0, 1) independently, ``_ema_cluster_size`` zeros; the Laplace-smoothed cluster size is
  stored back into its buffer; loss = commitment x MSE(quantized.detach(), inputs).

Modules are created in the reference's order (encoder, decoder, quantizer), so one
``torch.manual_seed`` gives the reference's initial weights. State-dict names are the
reference's: ``encoder.<i>.*``, ``decoder.<i>.*``, ``_vq_vae._embedding`` ...
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.vqvae.distributed import all_reduce_sum

# Codes re-ranked exactly per latent: float32 distances only shortlist them. The true
# nearest code is missed only if this many others are within float32 rounding of it.
_SHORTLIST = 8


class ResBlockV1(nn.Module):
    """``ResBlock_v1`` (VQVAE.py:161-173); parameters under ``net.0``, ``net.2``, ``net.4``."""

    def __init__(self, chan: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(chan, chan, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(chan, chan, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(chan, chan, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + x


def build_encoder(in_channels: int, hidden_channels: tuple[int, ...], num_res_blocks: int, code_dim: int) -> nn.Sequential:
    """VQVAE.py:241-252. ``hidden_channels`` = (h, 2h, 4h, ...), one entry per stride-2 conv."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden_channels[0], 4, stride=2, padding=1), nn.ReLU()]
    for c_in, c_out in zip(hidden_channels, hidden_channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
    layers += [ResBlockV1(hidden_channels[-1]) for _ in range(num_res_blocks)]
    layers.append(nn.Conv2d(hidden_channels[-1], code_dim, 1))
    return nn.Sequential(*layers)


def build_decoder(in_channels: int, hidden_channels: tuple[int, ...], num_res_blocks: int, code_dim: int) -> nn.Sequential:
    """VQVAE.py:254-269: the widest level first, one ConvT keeping it, then halving ones."""
    widths = list(reversed(hidden_channels))  # (8h, 4h, 2h, h) ...: h * ratio / 2 first
    layers: list[nn.Module] = [nn.Conv2d(code_dim, widths[0], 1), nn.ReLU()]
    layers += [ResBlockV1(widths[0]) for _ in range(num_res_blocks)]
    layers += [nn.ConvTranspose2d(widths[0], widths[0], 4, stride=2, padding=1), nn.ReLU()]
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
    layers.append(nn.Conv2d(widths[-1], in_channels, 1))
    return nn.Sequential(*layers)


def nearest_codes_exact(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code (squared L2) per row of ``flat`` [N, D], the same at any N.

    float32 matmul distances (``|x|^2 + |e|^2 - 2 x.e``, the reference's formula) depend in
    their last bits on how many rows are multiplied at once, which flips near-ties between
    batch sizes. Here those distances only shortlist the ``_SHORTLIST`` nearest codes; the
    shortlist is re-ranked by ``sum((x - e)^2)`` in float64 over each row's own elements
    (float32 inputs are exact in float64), candidates in index order, so the result is the
    true nearest code and an exact tie goes to the lowest index, whatever else is in ``flat``.
    """
    flat = flat.detach()
    book = codebook.detach().to(flat.dtype)
    k = min(_SHORTLIST, book.shape[0])
    approx = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.t() + book.pow(2).sum(1).unsqueeze(0)
    candidates = approx.topk(k, dim=1, largest=False).indices.sort(dim=1).values  # [N, k], ascending index
    diff = flat.to(torch.float64).unsqueeze(1) - book.to(torch.float64)[candidates]  # [N, k, D]
    exact = diff.pow(2).sum(-1)
    return candidates.gather(1, exact.argmin(dim=1, keepdim=True)).squeeze(1)


class ReferenceEMAQuantizer(nn.Module):
    """``VectorQuantizerEMA`` (VQVAE.py:58-140) with its buffers, init and update rule.

    Training forwards assign codes with the reference's float32 distances and update the
    EMAs exactly as the reference does; lookups for extraction (:meth:`nearest_codes`) use
    :func:`nearest_codes_exact`. There is no k-means initialisation and no dead-code
    restart (the reference has neither): ``last_restarted`` is always 0.
    """

    def __init__(
        self, codebook_size: int, code_dim: int, *, commitment_cost: float, decay: float, eps: float, sync_ranks: bool = False
    ) -> None:
        super().__init__()
        self.sync_ranks = sync_ranks  # False: the reference's DDP, each rank's own codebook
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.commitment_cost = commitment_cost
        self.decay = decay
        self.eps = eps
        # draw order as in VQVAE.py:65-73: embedding, then ema_w, both N(0, 1)
        self.register_buffer("_embedding", torch.empty(codebook_size, code_dim).normal_())
        self.register_buffer("_ema_cluster_size", torch.zeros(codebook_size))
        self.register_buffer("_ema_w", torch.empty(codebook_size, code_dim).normal_())
        self.last_restarted = 0

    @property
    def embedding(self) -> torch.Tensor:
        return self._embedding

    def nearest_codes(self, flat: torch.Tensor) -> torch.Tensor:
        return nearest_codes_exact(flat, self._embedding)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [...] -> code vectors [..., D] (``forward_indice``, VQVAE.py:78-89)."""
        return F.embedding(codes, self._embedding)

    def _reference_codes(self, flat: torch.Tensor) -> torch.Tensor:
        # VQVAE.py:100-105, same float32 expression and order
        distances = (
            torch.sum(flat**2, dim=1, keepdim=True)
            + torch.sum(self._embedding**2, dim=1)
            - 2 * torch.matmul(flat, self._embedding.t())
        )
        return torch.argmin(distances, dim=1)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, encodings: torch.Tensor) -> None:
        # VQVAE.py:114-127, expression by expression; with sync_ranks the per-code counts
        # and sums are summed over data-parallel ranks first (distributed.py)
        counts = torch.sum(encodings, 0)
        dw = torch.matmul(encodings.t(), flat)
        if self.sync_ranks:
            all_reduce_sum(counts)
            all_reduce_sum(dw)
        cluster = self._ema_cluster_size * self.decay + (1 - self.decay) * counts
        n = torch.sum(cluster)
        cluster = (cluster + self.eps) / (n + self.codebook_size * self.eps) * n
        ema_w = self._ema_w * self.decay + (1 - self.decay) * dw
        self._ema_cluster_size.copy_(cluster)
        self._ema_w.copy_(ema_w)
        self._embedding.copy_(ema_w / cluster.unsqueeze(1))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z [B, D, H, W] -> (straight-through quantized z, codes [B, H, W], commitment MSE).

        The returned loss is the unweighted MSE; the model multiplies it by the commitment
        weight (= the reference's ``commitment_cost * e_latent_loss``).
        """
        b, d, h, w = z.shape
        if d != self.code_dim:
            raise ValueError(f"quantizer expects {self.code_dim} channels, got {d}")
        inputs = z.permute(0, 2, 3, 1).contiguous()
        flat = inputs.view(-1, d)
        if self.training:
            codes = self._reference_codes(flat.detach())
            encodings = F.one_hot(codes, self.codebook_size).to(flat.dtype)
            quantized = self.lookup(codes)  # before the update, as in the reference
            self._ema_update(flat.detach(), encodings)
        else:
            codes = self.nearest_codes(flat)
            quantized = self.lookup(codes)
        quantized = quantized.view(inputs.shape)
        commit = F.mse_loss(quantized.detach(), inputs)
        straight_through = inputs + (quantized - inputs).detach()
        return straight_through.permute(0, 3, 1, 2).contiguous(), codes.view(b, h, w), commit
