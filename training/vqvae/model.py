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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.vqvae.aurora import ReferenceEMAQuantizer, build_decoder, build_encoder, nearest_codes_exact
from training.vqvae.config import VQVAEConfig, tiny_config
from training.vqvae.quantizer import EMAVectorQuantizer

# the config and quantizer live in their own modules; importers of training.vqvae.model keep working
__all__ = ["Decoder", "DepthVQVAE", "EMAVectorQuantizer", "Encoder", "ResBlock", "VQOutput", "VQVAEConfig", "tiny_config"]


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
        # both quantizers: codebook shape and the EMA settings, in the same meaning
        codebook = (config.codebook_size, config.code_dim)
        ema = dict(decay=config.ema_decay, eps=config.ema_eps, sync_ranks=config.sync_codebook)
        if config.architecture == "aurora":
            # creation order = the reference's (VQVAE.py:241-297): same init for one seed
            layout = (config.in_channels, config.hidden_channels, config.num_res_blocks, config.code_dim)
            self.encoder = build_encoder(*layout)
            self.decoder = build_decoder(*layout)
            self._vq_vae = ReferenceEMAQuantizer(*codebook, commitment_cost=config.commitment_weight, **ema)
            return
        self.encoder = Encoder(config)
        self.quantizer = EMAVectorQuantizer(
            *codebook,
            **ema,
            dead_code_threshold=config.dead_code_threshold,
            dead_code_window=config.dead_code_window,
            kmeans_init=config.kmeans_init,
            kmeans_iters=config.kmeans_iters,
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
