"""Depth Anything V1 (``DPT_DINOv2``) as the official repository builds it, with its key names.

Why a module of our own beside transformers' ``DepthAnythingForDepthEstimation``: the two
agree on square inputs, but on the aspect-ratio-preserving inputs that the official
``run.py`` feeds (e.g. 518 x 686) they resize DINOv2's position embeddings differently.
The official DINOv2 (``torchhub/facebookresearch_dinov2_main/vision_transformer.py:179-210``
in LiheYoung/Depth-Anything) interpolates bicubically by a *scale factor* of
``(n + 0.1) / 37``; transformers interpolates to a *size* ``n``. Different sampling grids,
different embeddings, different depth. This module follows the official rule, so the
``aurora`` teacher labels a non-square image the way Aurora's labels were made.

The parameter names are the official ones (``pretrained.blocks.0.attn.qkv.weight``,
``depth_head.scratch.refinenet1.out_conv.weight`` ...), so ``depth_anything_vits14.pth``
loads with ``strict=True`` and no renaming. Structure (LiheYoung/Depth-Anything,
``depth_anything/dpt.py``, ``depth_anything/blocks.py``):

* DINOv2 ViT/14: patch embedding, class token, learned position embedding for 37 x 37
  patches, pre-norm blocks (LayerNorm eps 1e-6, fused-qkv attention, GELU MLP, LayerScale),
  final norm; ``mask_token`` is a parameter although inference never uses it;
* the outputs of the *last four* blocks, each through the final norm (V2 instead taps
  blocks spread over the depth: ``intermediate_layer_idx``);
* DPT head: 1x1 projections, resize (4x, 2x transposed convs, identity, stride-2 conv),
  3x3 ``layerN_rn`` convs, four fusion blocks (residual conv units, bilinear x2 with
  corners aligned), ``output_conv1``, upsample to the patch grid x 14, ``output_conv2``
  (3x3, ReLU, 1x1, ReLU), then upsample to the input size and ReLU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from perception_tokens.depth.architectures import ENCODER_SPECS, PATCH_SIZE, check_version_encoder

POS_EMBED_OFFSET = 0.1  # official DINOv2 interpolate_offset (vision_transformer.py:194)


class PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Fused-qkv multi-head attention. The official block is ``MemEffAttention``
    (torchhub ``dinov2/layers/attention.py``): xformers' memory-efficient kernel when xformers
    is installed, else softmax(q k^T / sqrt(d)) v written out. PyTorch's fused kernel is the
    counterpart of the former (same maths, float rounding differs at 1e-6; 1.3-1.7x faster on
    CPU here, far less memory on GPU)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * 4)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT/14 without registers, as ``dinov2_vit{s,b,l}14`` builds it (no drop path)."""

    def __init__(self, dim: int, depth: int, heads: int, image_size: int):
        super().__init__()
        grid = image_size // PATCH_SIZE
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, dim))

    def position_embedding(self, rows: int, cols: int) -> torch.Tensor:
        """Position embeddings for a ``rows`` x ``cols`` patch grid, by the official rule."""
        stored = self.pos_embed.shape[1] - 1
        if rows * cols == stored and rows == cols:
            return self.pos_embed
        pos = self.pos_embed.float()
        side = math.sqrt(stored)
        grid = pos[:, 1:].reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2)
        # scale factor, not target size: the sampling grid is the official one
        scale = ((rows + POS_EMBED_OFFSET) / side, (cols + POS_EMBED_OFFSET) / side)
        grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)
        if tuple(grid.shape[-2:]) != (rows, cols):
            raise RuntimeError(f"position embedding resized to {tuple(grid.shape[-2:])}, expected {(rows, cols)}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat((pos[:, :1], grid), dim=1).to(self.pos_embed.dtype)

    def last_layers(self, x: torch.Tensor, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(patch tokens, class token) of the last ``n`` blocks, each through the final norm."""
        rows, cols = x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.position_embedding(rows, cols)
        taps = []
        first_tap = len(self.blocks) - n
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index >= first_tap:
                normed = self.norm(tokens)
                taps.append((normed[:, 1:], normed[:, 0]))
        return taps


class ResidualConvUnit(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, size=None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        resize = {"scale_factor": 2} if size is None else {"size": size}
        x = F.interpolate(x, **resize, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    def __init__(self, in_channels: int, features: int, out_channels: tuple[int, int, int, int], head_hidden: int):
        super().__init__()
        self.projects = nn.ModuleList(nn.Conv2d(in_channels, c, 1) for c in out_channels)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
        ])
        scratch = nn.Module()
        for i, channels in enumerate(out_channels, start=1):
            setattr(scratch, f"layer{i}_rn", nn.Conv2d(channels, features, 3, padding=1, bias=False))
        for i in range(1, 5):
            setattr(scratch, f"refinenet{i}", FeatureFusionBlock(features))
        scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, head_hidden, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(head_hidden, 1, 1),
            nn.ReLU(True),
            nn.Identity(),
        )
        self.scratch = scratch

    def forward(self, taps: list[tuple[torch.Tensor, torch.Tensor]], rows: int, cols: int) -> torch.Tensor:
        maps = []
        for i, (patches, _cls) in enumerate(taps):  # use_clstoken=False in every released V1 model
            x = patches.permute(0, 2, 1).reshape(patches.shape[0], patches.shape[-1], rows, cols)
            maps.append(self.resize_layers[i](self.projects[i](x)))
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(m) for i, m in enumerate(maps, start=1))
        path = s.refinenet4(l4, size=l3.shape[2:])
        path = s.refinenet3(path, l3, size=l2.shape[2:])
        path = s.refinenet2(path, l2, size=l1.shape[2:])
        path = s.refinenet1(path, l1)
        out = s.output_conv1(path)
        out = F.interpolate(out, (rows * PATCH_SIZE, cols * PATCH_SIZE), mode="bilinear", align_corners=True)
        return s.output_conv2(out)


class DepthAnythingV1(nn.Module):
    """``DPT_DINOv2`` of Depth Anything V1: (N, 3, H, W) normalised RGB -> (N, H, W) relative
    inverse depth. H and W must be multiples of 14 (the official ``run.py`` makes them so)."""

    def __init__(self, encoder: str = "vits"):
        super().__init__()
        check_version_encoder(1, encoder)
        spec = ENCODER_SPECS[encoder]
        self.encoder = encoder
        self.pretrained = DinoVisionTransformer(spec.hidden_size, spec.num_layers, spec.num_heads, spec.image_size)
        # head_hidden_size is 32 at every size, the official head_features_2 (dpt.py:84)
        self.depth_head = DPTHead(spec.hidden_size, spec.fusion_hidden_size, spec.neck_hidden_sizes, spec.head_hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(f"input {height}x{width} is not a multiple of the {PATCH_SIZE}-pixel patch")
        rows, cols = height // PATCH_SIZE, width // PATCH_SIZE
        depth = self.depth_head(self.pretrained.last_layers(x, 4), rows, cols)
        depth = F.interpolate(depth, size=(height, width), mode="bilinear", align_corners=True)
        return F.relu(depth).squeeze(1)


def build_dpt_dinov2(encoder: str = "vits", device: str | torch.device = "cpu") -> DepthAnythingV1:
    """An untrained V1 model in eval mode; ``device="meta"`` builds it without memory (for
    parameter counts of the full sizes)."""
    with torch.device(device):
        return DepthAnythingV1(encoder).eval()


def parameter_count(model: nn.Module) -> int:
    """All parameters, as the official ``run.py:36`` prints them (``mask_token`` included)."""
    return sum(p.numel() for p in model.parameters())


def build_tiny_dpt_dinov2(seed: int = 0) -> DepthAnythingV1:
    """The V1 network at the ``tiny`` test size with random weights that give a non-flat map.

    Matrices and kernels ~ N(0, 1/fan_in), norms ~ 1 + N(0, 0.1), biases ~ N(0, 0.1), the
    position embedding ~ N(0, 0.5) (so its interpolation shows in the output); the last
    1x1 conv gets non-negative weights and bias 0.5, so the final ReLUs do not zero the map.
    Deterministic for a given ``seed``; the caller's global RNG is left untouched.
    """
    model = DepthAnythingV1("tiny")
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for name, param in model.named_parameters():
            if name.endswith("pos_embed"):
                param.normal_(0.0, 0.5)
            elif param.ndim >= 2:
                fan_in = param[0].numel()
                param.normal_(0.0, fan_in ** -0.5)
            elif ".norm" in name or name.startswith("pretrained.norm"):
                param.normal_(1.0, 0.1) if name.endswith("weight") else param.normal_(0.0, 0.1)
            else:
                param.normal_(0.0, 0.1)
        last = model.depth_head.scratch.output_conv2[2]
        last.weight.abs_()
        last.bias.fill_(0.5)
    return model.eval()
