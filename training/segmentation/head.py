"""The segmentation head: the [SEG] hidden state -> a SAM2 mask prompt -> mask logits; its loss; save and reload.

Perceptio sec. 3.1/3.3: when the LLM emits ``[SEG]``, its hidden state conditions the SAM2
mask decoder, which predicts the referred object's mask from the frozen SAM2 encoder's dense
features; the mask decoder is fine-tuned. The projection from the LLM's hidden size to SAM2's
prompt embedding is LISA's ``text_hidden_fcs`` (Linear, ReLU, Linear); its output is the one
sparse prompt token of the mask decoder, with SAM2's "no mask" dense prompt.

Saved beside the LoRA adapter as ``segmentation_head.safetensors`` (mask decoder + projection;
with the tiny preset the whole SAM2, since a preset has no checkpoint to reload its frozen
encoder from) and ``segmentation_head.json`` (SAM2 checkpoint, hidden size, settings).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from perception_tokens.paths import atomic_write_bytes, atomic_write_text
from training.segmentation.sam2 import TINY, Sam2ImageInput, load_sam2
from training.segmentation.settings import SegmentationSettings

WEIGHTS_FILE = "segmentation_head.safetensors"
RECORD_FILE = "segmentation_head.json"


class SegmentationHead(nn.Module):
    """Frozen SAM2 image encoder + trainable SAM2 mask decoder + the [SEG] projection."""

    def __init__(self, sam2, llm_hidden_size: int, sam2_checkpoint: str = TINY):
        super().__init__()
        self.sam2 = sam2
        self.sam2_checkpoint = sam2_checkpoint
        self.llm_hidden_size = int(llm_hidden_size)
        prompt_dim = int(sam2.config.mask_decoder_config.hidden_size)
        self.projection = nn.Sequential(
            nn.Linear(self.llm_hidden_size, self.llm_hidden_size), nn.ReLU(inplace=True),
            nn.Linear(self.llm_hidden_size, prompt_dim),
        )
        self.image_input = Sam2ImageInput.for_checkpoint(sam2_checkpoint, sam2)
        # Only the mask decoder and the projection learn (Perceptio: "we fine-tune the SAM2 decoder").
        for p in self.sam2.parameters():
            p.requires_grad_(False)
        for p in self.sam2.mask_decoder.parameters():
            p.requires_grad_(True)

    @classmethod
    def build(cls, sam2_checkpoint: str, llm_hidden_size: int, *, seed: int = 0) -> "SegmentationHead":
        """SAM2 of ``sam2_checkpoint`` and a seeded projection for an LLM of ``llm_hidden_size``."""
        sam2 = load_sam2(sam2_checkpoint, seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(sam2, llm_hidden_size, sam2_checkpoint)

    def train(self, mode: bool = True) -> "SegmentationHead":
        super().train(mode)
        self.sam2.vision_encoder.eval()  # frozen: never in training mode
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def image_embeddings(self, sam_pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The frozen encoder's feature maps (high-resolution ones first, the prompt-level one last)."""
        return self.sam2.get_image_embeddings(sam_pixel_values.to(self.sam2.dtype))

    def forward(self, sam_pixel_values: torch.Tensor, seg_hidden: torch.Tensor) -> torch.Tensor:
        """``[n, 3, S, S]`` images and ``[n, hidden]`` [SEG] states -> ``[n, h, w]`` low-resolution mask logits."""
        embeddings = self.image_embeddings(sam_pixel_values)
        n = seg_hidden.shape[0]
        sparse = self.projection(seg_hidden.to(self.projection[0].weight.dtype))[:, None, None, :]  # one prompt token
        image_pe = self.sam2.get_image_wide_positional_embeddings().repeat(n, 1, 1, 1)
        dense = self.sam2.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(n, -1, *embeddings[-1].shape[-2:])
        masks, _iou, _tokens, _object_score = self.sam2.mask_decoder(
            image_embeddings=embeddings[-1], image_positional_embeddings=image_pe, sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, multimask_output=False, high_resolution_features=embeddings[:-1],
        )
        return masks[:, 0, 0]

    def predict_masks(self, sam_pixel_values: torch.Tensor, seg_hidden: torch.Tensor, sizes) -> list[torch.Tensor]:
        """Mask logits at each image's own ``(height, width)`` (the renderer of the [SEG] kind)."""
        logits = self(sam_pixel_values, seg_hidden)
        return [upsample(logits[i], size) for i, size in enumerate(sizes)]

    # ------------------------------------------------------------------ save / reload

    def saved_state(self) -> dict[str, torch.Tensor]:
        """What a reload cannot rebuild: the mask decoder and the projection (and a preset's whole SAM2)."""
        state = {f"projection.{k}": v for k, v in self.projection.state_dict().items()}
        sam = self.sam2.state_dict() if self.sam2_checkpoint == TINY else {
            f"mask_decoder.{k}": v for k, v in self.sam2.mask_decoder.state_dict().items()}
        state.update({f"sam2.{k}": v for k, v in sam.items()})
        return {k: v.detach().contiguous().cpu() for k, v in state.items()}

    def save_pretrained(self, directory: str | os.PathLike, settings: SegmentationSettings | None = None) -> None:
        """Write the weights and the record into ``directory`` (each through a temp name, then renamed)."""
        from safetensors.torch import save

        directory = Path(directory)
        record = {"sam2_checkpoint": self.sam2_checkpoint, "llm_hidden_size": self.llm_hidden_size,
                  "settings": (settings or SegmentationSettings(enabled=True, sam2_checkpoint=self.sam2_checkpoint)).to_dict()}
        atomic_write_bytes(directory / WEIGHTS_FILE, save(self.saved_state()))
        atomic_write_text(directory / RECORD_FILE, json.dumps(record, indent=1, sort_keys=True))


def load_head(directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> SegmentationHead:
    """The head saved in ``directory`` (beside an adapter), in eval mode; a clear error naming a bad file."""
    from safetensors.torch import load_file

    directory = Path(directory)
    path = directory / RECORD_FILE
    try:
        record: dict[str, Any] = json.loads(path.read_text())
        checkpoint, hidden = str(record["sam2_checkpoint"]), int(record["llm_hidden_size"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the segmentation head record ({exc})") from exc
    head = SegmentationHead.build(checkpoint, hidden)
    weights = directory / WEIGHTS_FILE
    try:
        state = load_file(str(weights))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{weights}: cannot read the segmentation head weights ({exc})") from exc
    expected = set(head.saved_state())
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"{weights}: does not match a head on {checkpoint} with hidden size {hidden} "
                         f"(missing {missing[:3]}, unexpected {extra[:3]})")
    head.load_state_dict({k: v for k, v in state.items()}, strict=False)  # the rest is the checkpoint's frozen encoder
    return head.to(device).eval()


# ---------------------------------------------------------------------------- loss


def upsample(logits: torch.Tensor, size) -> torch.Tensor:
    """``[h, w]`` mask logits -> ``size`` (bilinear): SAM2's input is the squashed whole image, so this is the image."""
    return F.interpolate(logits[None, None].float(), size=tuple(int(v) for v in size), mode="bilinear",
                         align_corners=False)[0, 0]


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft DICE of sigmoid(logits) against a 0/1 target (one mask)."""
    prob = torch.sigmoid(logits).flatten()
    target = target.flatten().float()
    return 1.0 - (2.0 * (prob * target).sum() + smooth) / (prob.sum() + target.sum() + smooth)


def segmentation_loss(logits: torch.Tensor, masks: list[torch.Tensor], settings: SegmentationSettings) -> dict[str, torch.Tensor]:
    """Perceptio eq. (3): pixel-wise BCE + DICE, each mask at its own size, averaged over the masks.

    Returns ``bce``, ``dice`` (unweighted means) and ``total`` = weight x (bce_weight x bce + dice_weight x dice).
    """
    if len(masks) != logits.shape[0] or not masks:
        raise ValueError(f"{logits.shape[0]} mask predictions for {len(masks)} ground-truth masks")
    bce, dice = [], []
    for pred, gt in zip(logits, masks):
        full = upsample(pred, gt.shape)
        bce.append(F.binary_cross_entropy_with_logits(full, gt.float()))
        dice.append(dice_loss(full, gt))
    bce_mean, dice_mean = torch.stack(bce).mean(), torch.stack(dice).mean()
    total = settings.weight * (settings.bce_weight * bce_mean + settings.dice_weight * dice_mean)
    return {"bce": bce_mean, "dice": dice_mean, "total": total}
