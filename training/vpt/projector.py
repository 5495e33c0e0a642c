"""VPT's Vision Re-Encoding projector (arXiv 2502.17425 Sec. 3.2, 4.1): an additional vision encoder
(DINOv2, the paper's best) whose features are the *queries* of a cross-attention module whose
keys/values are the hidden states of the ``<Re-Encoding Control>`` token(s); the output is a
sequence of embeddings in the LLM's width, appended after the control token.

The paper gives no layer sizes: here one ``nn.MultiheadAttention`` (pre-norm, residual on the
queries) and a two-layer GELU MLP into the LLM width. With one control token every query
attends to the one key with weight 1, so the control state enters as a value vector added to
each patch feature before the MLP (one control token is the paper's best setting; 2 gain little, 4 lose).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BitImageProcessorPil, Dinov2Config, Dinov2Model

TINY = "tiny"
TINY_DINO_IMAGE = 28  # two 14-px patches a side: 4 patch features


def tiny_dinov2() -> tuple[Dinov2Model, BitImageProcessorPil]:
    """A DINOv2 of the real architecture, built from config (tests, demo): hidden 32, 2 layers."""
    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          patch_size=14, image_size=TINY_DINO_IMAGE)
    size = {"shortest_edge": TINY_DINO_IMAGE}
    crop = {"height": TINY_DINO_IMAGE, "width": TINY_DINO_IMAGE}
    return Dinov2Model(config), BitImageProcessorPil(size=size, crop_size=crop, do_convert_rgb=True)


def load_dinov2(name: str) -> tuple[Dinov2Model, BitImageProcessorPil]:
    """``"tiny"``, or a checkpoint (e.g. ``facebook/dinov2-large``, a local dir) by ``from_pretrained``."""
    if name == TINY:
        return tiny_dinov2()
    return Dinov2Model.from_pretrained(name), BitImageProcessorPil.from_pretrained(name)


class ReEncodingProjector(nn.Module):
    """DINOv2 patch features (queries) x control hidden states (keys/values) -> LLM embeddings."""

    def __init__(self, dino_width: int, llm_width: int, heads: int = 4):
        super().__init__()
        self.query = nn.Linear(dino_width, llm_width)
        self.norm_q, self.norm_kv = nn.LayerNorm(llm_width), nn.LayerNorm(llm_width)
        self.attention = nn.MultiheadAttention(llm_width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(llm_width), nn.Linear(llm_width, llm_width), nn.GELU(),
                                 nn.Linear(llm_width, llm_width))

    def forward(self, features: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """``features`` ``[n_patches, dino_width]``, ``control`` ``[n_control, llm_width]`` -> ``[n_patches, llm_width]``."""
        q = self.query(features).unsqueeze(0)
        kv = self.norm_kv(control.unsqueeze(0).to(q.dtype))
        attended, _ = self.attention(self.norm_q(q), kv, kv, need_weights=False)
        x = q + attended
        return (x + self.mlp(x)).squeeze(0)


class ReEncoder(nn.Module):
    """DINOv2 + projector: the action behind ``<REENCODE_CONTROL>``."""

    def __init__(self, dino: Dinov2Model, image_processor: BitImageProcessorPil, llm_width: int, heads: int = 4):
        super().__init__()
        self.dino, self.image_processor = dino, image_processor
        self.projector = ReEncodingProjector(dino.config.hidden_size, llm_width, heads)

    def features(self, image) -> torch.Tensor:
        """The image's DINOv2 patch features (CLS dropped), ``[n_patches, dino_width]``."""
        pixels = self.image_processor(images=[image], return_tensors="pt")["pixel_values"]
        param = next(self.dino.parameters())
        out = self.dino(pixel_values=pixels.to(param.device, param.dtype))
        return out.last_hidden_state[0, 1:]

    def forward(self, image, control: torch.Tensor) -> torch.Tensor:
        # the projector may train in float32 beside a bf16 DINOv2 (small updates survive): its dtype rules
        return self.projector(self.features(image).to(self.projector.query.weight.dtype), control)
