"""Depth Anything architectures as transformers configs: the real sizes and a tiny test size.

The real sizes (ViT-S/B/L, versions 1 and 2) match the published checkpoints, so a config
built here loads an official or converted checkpoint without missing or extra weights.
V1 and V2 differ only in which backbone layers feed the DPT neck: V1 takes the last four,
V2 spreads them over the depth of the encoder. ``tiny`` is the same classes at toy width
for tests and the demo; it exists only here (there is no published tiny checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

REAL_ENCODERS = ("vits", "vitb", "vitl")
TEST_ENCODER = "tiny"
ENCODERS = REAL_ENCODERS + (TEST_ENCODER,)
VERSIONS = (1, 2)
PATCH_SIZE = 14
DEFAULT_INPUT_SIZE = 518  # Depth Anything's training / inference resolution (37 x 14)


@dataclass(frozen=True)
class EncoderSpec:
    """Widths of one Depth Anything size: DINOv2 encoder plus DPT neck and head."""

    hidden_size: int
    num_layers: int
    num_heads: int
    fusion_hidden_size: int  # "features" in the official code
    neck_hidden_sizes: tuple[int, int, int, int]  # "out_channels" in the official code
    head_hidden_size: int
    v2_out_indices: tuple[int, int, int, int]  # 1-based layer indices (0 is the embeddings)
    image_size: int = DEFAULT_INPUT_SIZE

    @property
    def v1_out_indices(self) -> tuple[int, int, int, int]:
        last = self.num_layers
        return (last - 3, last - 2, last - 1, last)

    def out_indices(self, version: int) -> tuple[int, int, int, int]:
        return self.v1_out_indices if version == 1 else self.v2_out_indices


ENCODER_SPECS: dict[str, EncoderSpec] = {
    "vits": EncoderSpec(384, 12, 6, 64, (48, 96, 192, 384), 32, (3, 6, 9, 12)),
    "vitb": EncoderSpec(768, 12, 12, 128, (96, 192, 384, 768), 32, (3, 6, 9, 12)),
    "vitl": EncoderSpec(1024, 24, 16, 256, (256, 512, 1024, 1024), 32, (5, 12, 18, 24)),
    # Toy width, same topology: four encoder layers all feeding the neck. The head's hidden
    # width stays 32: the official DPTHead hard-codes it (head_features_2, dpt.py:84), so the
    # official classes can be built at this size too (tests/depth/make_v1_golden.py).
    "tiny": EncoderSpec(32, 4, 2, 16, (8, 16, 32, 32), 32, (1, 2, 3, 4), image_size=70),
}


def check_version_encoder(version: int, encoder: str) -> None:
    """Raise ValueError with the allowed values when ``version`` or ``encoder`` is unknown."""
    if version not in VERSIONS:
        raise ValueError(f"Depth Anything version must be one of {VERSIONS}, got {version!r}")
    if encoder not in ENCODER_SPECS:
        raise ValueError(
            f"encoder must be one of {REAL_ENCODERS} (or {TEST_ENCODER!r} for the test model), "
            f"got {encoder!r}"
        )


def depth_anything_config(
    version: int = 2, encoder: str = "vits", initializer_range: float = 0.02
) -> DepthAnythingConfig:
    """transformers config for Depth Anything ``version`` (1 or 2) at size ``encoder``."""
    check_version_encoder(version, encoder)
    spec = ENCODER_SPECS[encoder]
    backbone = Dinov2Config(
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        mlp_ratio=4,
        image_size=spec.image_size,
        patch_size=PATCH_SIZE,
        layerscale_value=1.0,
        # The official code applies the final norm to every intermediate layer it taps.
        apply_layernorm=True,
        reshape_hidden_states=False,
        out_indices=list(spec.out_indices(version)),
        initializer_range=initializer_range,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=PATCH_SIZE,
        reassemble_hidden_size=spec.hidden_size,
        reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=list(spec.neck_hidden_sizes),
        fusion_hidden_size=spec.fusion_hidden_size,
        head_hidden_size=spec.head_hidden_size,
        head_in_index=-1,
        depth_estimation_type="relative",
        initializer_range=initializer_range,
    )


def build_depth_anything(version: int = 2, encoder: str = "vits", seed: int = 0) -> DepthAnythingForDepthEstimation:
    """A randomly initialised Depth Anything of a real (or tiny) size, in eval mode.

    Random weights are enough for speed and memory measurements; the RNG is forked so the
    caller's global torch seed is left untouched.
    """
    config = depth_anything_config(version, encoder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DepthAnythingForDepthEstimation(config)
    return model.eval()


def build_tiny_depth_anything(version: int = 2, seed: int = 0) -> DepthAnythingForDepthEstimation:
    """A tiny Depth Anything (DINOv2 width 32, 4 layers, patch 14) with random weights.

    transformers' default init (std 0.02) makes the random output numerically flat and
    mostly clipped to zero by the final ReLU; a min-max-normalised map of that is noise
    at float rounding level. So the backbone uses a wider init, the DPT convolutions use
    PyTorch's default (fan-in scaled) init, and the last 1x1 conv gets non-negative weights
    and a positive bias: the output is strictly positive and varies smoothly with the
    image, like a trained relative-depth head. Deterministic for a given ``seed``.
    """
    config = depth_anything_config(version, TEST_ENCODER, initializer_range=0.1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DepthAnythingForDepthEstimation(config)
        for module in list(model.neck.modules()) + list(model.head.modules()):
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.reset_parameters()
        with torch.no_grad():
            model.head.conv3.weight.abs_()
            model.head.conv3.bias.fill_(0.5)
    return model.eval()
