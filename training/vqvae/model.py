"""The depth VQ-VAE: a convolutional encoder, an EMA vector quantizer and a mirrored decoder.

Shape of the reference model (Aurora reuses AiT's depth tokenizer): a 1-channel depth map
resized to 320x320, five stride-2 convolutions down to a 10x10 grid, two residual blocks,
a codebook of 128 entries of dimension 512 updated by exponential moving averages, and a
decoder of transposed convolutions that mirrors the encoder. Loss = MSE reconstruction +
0.25 x commitment. Every image becomes ``grid_size**2`` codes (100 for the 10x10 grid),
row-major, which ``perception_tokens.vocab.encode_depth`` turns into the token string.

Inputs are depth maps as float tensors in [0, 1] (uint8 / 255, see ``data.py``); outputs
are reconstructions on the same scale (not clamped: clamp when converting back to uint8).
Inside, the network sees [-1, 1] (``input_range: minus_one_one``, the reference's
``Normalize(0.5, 0.5)``) or [0, 1] - 0.5 (``zero_one``, the project's variant).

Two architectures share this interface: ``architecture: aurora`` is the reference model
layer for layer (``aurora.py``: its state-dict names, shapes, quantizer and init), and
``project`` is this project's variant (pre-activation residual blocks, k-means codebook
init, dead-code restarts) that the demo uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training.vqvae.aurora import ReferenceEMAQuantizer, build_decoder, build_encoder, nearest_codes_exact
from training.vqvae.distributed import all_reduce_sum, broadcast_from_rank0, gather_rows, is_rank0, world_size

ARCHITECTURES = ("project", "aurora")
RESIZES = ("area", "nearest")  # cv2.INTER_AREA | PIL NEAREST (the reference's, custom.py:39)
INPUT_RANGES = ("zero_one", "minus_one_one")  # [0, 1] - 0.5 | Normalize(0.5, 0.5) (custom.py:41)


# ----------------------------------------------------------------------------- config


def default_hidden_channels(num_downsamples: int, base: int = 64, cap: int = 256) -> tuple[int, ...]:
    """Channels per downsampling level: ``base`` doubling at each level, capped at ``cap``."""
    return tuple(min(base * 2**i, cap) for i in range(num_downsamples))


@dataclass
class VQVAEConfig:
    """Architecture and quantizer settings; the defaults are the full-size AiT/Aurora model.

    ``hidden_channels`` lists the encoder's channels per downsampling level (the decoder
    mirrors them); left empty it becomes ``base_channels`` doubling per level, capped at
    ``max_channels``. A code is "dead" when it was picked fewer than ``dead_code_threshold``
    times over the last ``dead_code_window`` training steps; dead codes are restarted from
    random encoder outputs of the current batch.
    """

    image_size: int = 320
    in_channels: int = 1
    hidden_channels: tuple[int, ...] = ()
    base_channels: int = 64
    max_channels: int = 256
    num_downsamples: int = 5
    num_res_blocks: int = 2
    codebook_size: int = 128
    code_dim: int = 512
    commitment_weight: float = 0.25
    ema_decay: float = 0.99
    ema_eps: float = 1e-5
    dead_code_threshold: float = 1.0
    dead_code_window: int = 20
    kmeans_init: bool = True
    kmeans_iters: int = 10
    architecture: str = "project"
    resize: str = "area"
    input_range: str = "zero_one"
    sync_codebook: bool = True  # sum EMA statistics over data-parallel ranks (False: the reference's per-rank DDP)

    def __post_init__(self) -> None:
        if isinstance(self.num_downsamples, int) and self.num_downsamples >= 1 and not self.hidden_channels:
            self.hidden_channels = default_hidden_channels(self.num_downsamples, self.base_channels, self.max_channels)
        self.hidden_channels = tuple(int(c) for c in self.hidden_channels)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming every inconsistent setting."""
        problems: list[str] = []

        def need(ok: bool, msg: str) -> None:
            if not ok:
                problems.append(msg)

        need(self.num_downsamples >= 1, f"num_downsamples must be >= 1, got {self.num_downsamples}")
        need(self.image_size >= 1, f"image_size must be positive, got {self.image_size}")
        if self.num_downsamples >= 1 and self.image_size >= 1:
            factor = 2**self.num_downsamples
            need(
                self.image_size % factor == 0,
                f"image_size {self.image_size} is not divisible by 2**num_downsamples = {factor}",
            )
        need(self.in_channels >= 1, f"in_channels must be >= 1, got {self.in_channels}")
        need(
            len(self.hidden_channels) == self.num_downsamples,
            f"hidden_channels has {len(self.hidden_channels)} entries, need one per downsampling level "
            f"({self.num_downsamples})",
        )
        need(all(c >= 1 for c in self.hidden_channels), f"hidden_channels must be positive: {self.hidden_channels}")
        need(self.num_res_blocks >= 0, f"num_res_blocks must be >= 0, got {self.num_res_blocks}")
        need(
            2 <= self.codebook_size <= 32767,
            f"codebook_size must be in 2..32767 (codes are stored as int16), got {self.codebook_size}",
        )
        need(self.code_dim >= 1, f"code_dim must be >= 1, got {self.code_dim}")
        need(self.commitment_weight >= 0, f"commitment_weight must be >= 0, got {self.commitment_weight}")
        need(0.0 < self.ema_decay < 1.0, f"ema_decay must be in (0, 1), got {self.ema_decay}")
        need(self.ema_eps > 0, f"ema_eps must be > 0, got {self.ema_eps}")
        need(self.dead_code_threshold >= 0, f"dead_code_threshold must be >= 0, got {self.dead_code_threshold}")
        need(self.dead_code_window >= 1, f"dead_code_window must be >= 1, got {self.dead_code_window}")
        need(self.kmeans_iters >= 1, f"kmeans_iters must be >= 1, got {self.kmeans_iters}")
        need(self.architecture in ARCHITECTURES, f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        need(self.resize in RESIZES, f"resize must be one of {RESIZES}, got {self.resize!r}")
        need(self.input_range in INPUT_RANGES, f"input_range must be one of {INPUT_RANGES}, got {self.input_range!r}")
        if self.architecture == "aurora":
            # the reference can only express widths doubling from hidden_dim (VQVAE.py:245-248)
            doubling = tuple(self.hidden_channels[0] * 2**i for i in range(len(self.hidden_channels))) if self.hidden_channels else ()
            need(
                self.hidden_channels == doubling,
                f"architecture aurora needs hidden_channels doubling from the first (h, 2h, 4h, ...), got {self.hidden_channels}",
            )
            need(not self.kmeans_init, "kmeans_init applies to the project quantizer; set it false with architecture aurora")
            need(
                self.dead_code_threshold == 0,
                "dead-code restarts apply to the project quantizer; set dead_code_threshold 0 with architecture aurora",
            )
        if problems:
            raise ValueError("invalid VQVAEConfig: " + "; ".join(problems))

    @property
    def grid_size(self) -> int:
        """Side of the code grid: image_size / 2**num_downsamples (10 for Aurora)."""
        return self.image_size // 2**self.num_downsamples

    @property
    def codes_per_image(self) -> int:
        return self.grid_size**2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_channels"] = list(self.hidden_channels)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VQVAEConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown VQVAEConfig keys: {unknown}")
        values = dict(data)
        if "hidden_channels" in values:
            values["hidden_channels"] = tuple(values["hidden_channels"])
        return cls(**values)

    @classmethod
    def tiny(cls, **overrides: Any) -> "VQVAEConfig":
        """Small same-architecture config for tests and the demo: 80x80 input, 3 downsamples
        -> the same 10x10 grid and 128 codes as the full model, 64-dim codes."""
        values: dict[str, Any] = dict(
            image_size=80,
            num_downsamples=3,
            hidden_channels=(16, 32, 64),
            num_res_blocks=2,
            codebook_size=128,
            code_dim=64,
            dead_code_window=10,
        )
        values.update(overrides)
        return cls(**values)


    @classmethod
    def aurora(cls, **overrides: Any) -> "VQVAEConfig":
        """The reference model (ait_depth_vqvae.py:1-15): 320 px, hidden_dim 16 doubling over
        5 stride-2 convs (downsample_ratio 32), 2 ResBlock_v1, 128 codes of 512, EMA decay
        0.99, commitment 0.25, PIL NEAREST resize, inputs on [-1, 1]; 7,689,201 parameters."""
        values: dict[str, Any] = dict(
            image_size=320,
            num_downsamples=5,
            hidden_channels=(16, 32, 64, 128, 256),
            num_res_blocks=2,
            codebook_size=128,
            code_dim=512,
            commitment_weight=0.25,
            ema_decay=0.99,
            ema_eps=1e-5,
            dead_code_threshold=0.0,
            kmeans_init=False,
            architecture="aurora",
            resize="nearest",
            input_range="minus_one_one",
            # DDP with broadcast_buffers=False (train_depth_vqvae_dist.py:137): each rank's
            # codebook follows its own shard; one process: no difference
            sync_codebook=False,
        )
        values.update(overrides)
        return cls(**values)


def tiny_config(**overrides: Any) -> VQVAEConfig:
    """Shorthand for :meth:`VQVAEConfig.tiny`."""
    return VQVAEConfig.tiny(**overrides)


# ----------------------------------------------------------------------------- quantizer


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


# ----------------------------------------------------------------------------- encoder / decoder


class ResBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), as in the original VQ-VAE."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class Encoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = cfg.in_channels
        for i, ch in enumerate(cfg.hidden_channels):
            layers.append(nn.Conv2d(prev, ch, 4, stride=2, padding=1))
            if i < len(cfg.hidden_channels) - 1:
                layers.append(nn.ReLU())
            prev = ch
        layers += [ResBlock(prev) for _ in range(cfg.num_res_blocks)]
        layers += [nn.ReLU(), nn.Conv2d(prev, cfg.code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        chans = list(reversed(cfg.hidden_channels))
        layers: list[nn.Module] = [nn.Conv2d(cfg.code_dim, chans[0], 1)]
        layers += [ResBlock(chans[0]) for _ in range(cfg.num_res_blocks)]
        outs = chans[1:] + [cfg.in_channels]
        for ch_in, ch_out in zip(chans, outs):
            layers += [nn.ReLU(), nn.ConvTranspose2d(ch_in, ch_out, 4, stride=2, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


# ----------------------------------------------------------------------------- the model


@dataclass
class VQOutput:
    """Result of a forward pass; ``loss = recon_loss + commitment_weight * commit_loss``."""

    recon: torch.Tensor  # [B, C, S, S], same scale as the input ([0, 1])
    codes: torch.Tensor  # [B, g, g] long
    loss: torch.Tensor
    recon_loss: torch.Tensor
    commit_loss: torch.Tensor


class DepthVQVAE(nn.Module):
    """Depth map [B, 1, S, S] in [0, 1] <-> code grid [B, g, g] with codes in 0..codebook_size-1."""

    # inputs are centred around 0 for the convolutions; outputs shifted back
    _INPUT_SHIFT = 0.5

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        if config.architecture == "aurora":
            # creation order = the reference's (VQVAE.py:241-297): same init for one seed
            layout = (config.in_channels, config.hidden_channels, config.num_res_blocks, config.code_dim)
            self.encoder = build_encoder(*layout)
            self.decoder = build_decoder(*layout)
            self._vq_vae = ReferenceEMAQuantizer(
                config.codebook_size,
                config.code_dim,
                commitment_cost=config.commitment_weight,
                decay=config.ema_decay,
                eps=config.ema_eps,
                sync_ranks=config.sync_codebook,
            )
            return
        self.encoder = Encoder(config)
        self.quantizer = EMAVectorQuantizer(
            config.codebook_size,
            config.code_dim,
            decay=config.ema_decay,
            eps=config.ema_eps,
            dead_code_threshold=config.dead_code_threshold,
            dead_code_window=config.dead_code_window,
            kmeans_init=config.kmeans_init,
            kmeans_iters=config.kmeans_iters,
            sync_ranks=config.sync_codebook,
        )
        self.decoder = Decoder(config)

    @property
    def vq(self) -> nn.Module:
        """The quantizer, whichever architecture (``_vq_vae`` in the reference's names)."""
        return self._vq_vae if self.config.architecture == "aurora" else self.quantizer

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] input -> the network's scale."""
        if self.config.input_range == "minus_one_one":
            return (x - 0.5) / 0.5  # torchvision Normalize((0.5), (0.5)): sub_(mean).div_(std)
        return x - self._INPUT_SHIFT

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """The network's output scale -> [0, 1]."""
        if self.config.input_range == "minus_one_one":
            return y * 0.5 + 0.5
        return y + self._INPUT_SHIFT

    def _check_input(self, x: torch.Tensor) -> None:
        c, s = self.config.in_channels, self.config.image_size
        if x.ndim != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"DepthVQVAE expects input [B, {c}, {s}, {s}], got {list(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"DepthVQVAE expects a float tensor in [0, 1], got dtype {x.dtype}")

    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous encoder output [B, code_dim, g, g] (before quantization)."""
        self._check_input(x)
        return self.encoder(self.normalize(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Depth [B, 1, S, S] -> codes LongTensor [B, g, g]; never updates the codebook.

        The nearest code is exact (``nearest_codes_exact``); the latents themselves still
        vary in their last bits with the batch's size, which ``extract.encode_batch_invariant``
        removes by always encoding micro-batches of one size."""
        z = self.encode_latents(x)
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        return nearest_codes_exact(flat, self.vq.embedding).reshape(b, h, w)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, g, g] (or [B, g*g], row-major) -> reconstruction [B, 1, S, S]."""
        g, k = self.config.grid_size, self.config.codebook_size
        if codes.ndim == 2 and codes.shape[1] == g * g:
            codes = codes.reshape(codes.shape[0], g, g)
        if codes.ndim != 3 or codes.shape[1:] != (g, g):
            raise ValueError(f"decode_codes expects codes [B, {g}, {g}] or [B, {g * g}], got {list(codes.shape)}")
        codes = codes.long()
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
            raise ValueError(f"codes must lie in 0..{k - 1}, got {int(codes.min())}..{int(codes.max())}")
        z_q = self.vq.lookup(codes).permute(0, 3, 1, 2)
        return self.denormalize(self.decoder(z_q))

    def forward(self, x: torch.Tensor) -> VQOutput:
        self._check_input(x)
        x_in = self.normalize(x)
        z_q, codes, commit_loss = self.vq(self.encoder(x_in))
        out = self.decoder(z_q)
        recon = self.denormalize(out)
        # MSE on the network's scale: [-1, 1] for the reference (VQVAE.py:361 with
        # custom.py:41's Normalize), [0, 1] for the project's variant
        recon_loss = F.mse_loss(out, x_in) if self.config.input_range == "minus_one_one" else F.mse_loss(recon, x)
        loss = recon_loss + self.config.commitment_weight * commit_loss
        return VQOutput(recon=recon, codes=codes, loss=loss, recon_loss=recon_loss, commit_loss=commit_loss)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

