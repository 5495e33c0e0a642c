"""SAM2 for the segmentation head: the model (a real checkpoint or the tiny preset) and its image input.

Real runs load ``facebook/sam2.1-hiera-{tiny,small,base-plus,large}`` (or a local copy) with
``Sam2Model.from_pretrained``. Tests and the demo use ``"tiny"``: a SAM2 of the same
architecture built from a small ``Sam2Config`` (64x64 input, 32-d prompt embedding), seeded.

The image input follows SAM2's own preprocessing (``Sam2ImageProcessor``: resize to the
square input size without keeping the aspect ratio, rescale to [0, 1], normalise with the
ImageNet mean/std), read from the checkpoint's ``preprocessor_config.json`` when it has one.
It is written here with OpenCV because transformers' SAM2 image processor needs torchvision,
which this project does not install.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

TINY = "tiny"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TINY_IMAGE_SIZE = 64


def tiny_sam2_config():
    """A SAM2 (Hiera backbone, FPN neck, prompt encoder, two-way mask decoder) small enough for CPU tests."""
    from transformers import Sam2Config
    from transformers.models.sam2.configuration_sam2 import (
        Sam2HieraDetConfig, Sam2MaskDecoderConfig, Sam2PromptEncoderConfig, Sam2VisionConfig,
    )

    s = TINY_IMAGE_SIZE
    backbone = Sam2HieraDetConfig(
        hidden_size=16, num_attention_heads=1, image_size=[s, s], blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 2, 2],
        # the one global block may not be a stage's first (pooling) block
        window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[3], window_positional_embedding_background_size=[2, 2],
    )
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                              backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
                              fpn_hidden_size=32)
    prompt = Sam2PromptEncoderConfig(hidden_size=32, image_size=s, patch_size=16, mask_input_channels=4)
    decoder = Sam2MaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    return Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def load_sam2(checkpoint: str = TINY, *, seed: int = 0):
    """``Sam2Model`` of ``checkpoint``: the tiny preset (seeded init) or ``from_pretrained`` (hub id or folder)."""
    from transformers import Sam2Model

    if checkpoint == TINY:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Sam2Model(tiny_sam2_config()).eval()
    return Sam2Model.from_pretrained(checkpoint).eval()


@dataclass(frozen=True)
class Sam2ImageInput:
    """SAM2's image preprocessing: square resize, rescale, normalise."""

    size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def for_checkpoint(cls, checkpoint: str, model) -> "Sam2ImageInput":
        """The checkpoint's preprocessor settings when it ships them, else SAM2's defaults at the model's input size."""
        size = int(model.config.prompt_encoder_config.image_size)
        path = Path(checkpoint).expanduser() / "preprocessor_config.json"
        if checkpoint != TINY and path.is_file():
            try:
                cfg = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}: cannot read the SAM2 preprocessor settings ({exc})") from exc
            return cls(size, tuple(cfg.get("image_mean", IMAGENET_MEAN)), tuple(cfg.get("image_std", IMAGENET_STD)))
        return cls(size)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """An RGB ``[h, w, 3]`` uint8 image -> ``[3, size, size]`` float pixel values."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"SAM2 input must be an RGB [h, w, 3] image, got shape {image.shape}")
        resized = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        normalised = (resized - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))
