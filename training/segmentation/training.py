"""The segmentation head in a fine-tune: records with a mask, the batch, and the loss at the [SEG] position.

A record opts in with ``mask_rle`` (``{"size": [h, w], "counts": str}``, COCO's compressed RLE,
the mask of the referred object in the record's image) and a ``[SEG]`` in an assistant turn.
The hidden state the head reads is the last layer's at the ``[SEG]`` token's own position (the
state after the model has read ``[SEG]``; at inference that is the state of the step after
``[SEG]`` is generated). Perceptio does not say which position; LISA takes the same token.
Records without ``mask_rle`` train the language model only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from perception_tokens.token_kinds import SEG_TOKEN
from training.llava.data import ROLE_OF, RecordError, open_image, safe_image_path
from training.segmentation.head import RECORD_FILE, WEIGHTS_FILE, SegmentationHead, segmentation_loss, upsample
from training.segmentation.masks import MaskError, decode_mask_rle
from training.segmentation.settings import SegmentationSettings

MASK_COLUMN = "mask_rle"
NO_MASK = torch.zeros((0, 0), dtype=torch.uint8)  # a record without a mask (the LM loss only)


class SegmentationDataset(Dataset):
    """A family's conversation dataset plus each record's SAM2 image input and ground-truth mask."""

    def __init__(self, base, head: SegmentationHead):
        self.base, self.image_input = base, head.image_input
        for i, rec in enumerate(base.records):
            if rec.get(MASK_COLUMN) is not None and not any(
                    ROLE_OF[t["from"]] == "assistant" and SEG_TOKEN in t["value"] for t in rec["conversations"]):
                raise RecordError(f"{base.source} record {i} ({rec['id']}): has {MASK_COLUMN} but no {SEG_TOKEN} "
                                  "in an assistant turn to predict it from")

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.base[index])
        rec = self.base.records[index]
        where = f"{self.base.source} record {index} ({rec['id']})"
        image = open_image(safe_image_path(self.base.image_dir, rec["image"]))
        item["sam_pixel_values"] = self.image_input(np.asarray(image))
        if rec.get(MASK_COLUMN) is None:
            item["gt_mask"] = NO_MASK
            return item
        try:
            mask = decode_mask_rle(rec[MASK_COLUMN], where)
        except MaskError as exc:
            raise RecordError(str(exc)) from exc
        if mask.shape != (image.height, image.width):
            raise RecordError(f"{where}: {MASK_COLUMN} is {mask.shape[0]}x{mask.shape[1]}, "
                              f"its image {rec['image']} is {image.height}x{image.width}")
        item["gt_mask"] = torch.from_numpy(mask)
        return item


@dataclass
class SegmentationCollator:
    """The family's collator, plus ``sam_pixel_values`` ``[b, 3, S, S]`` and ``gt_masks`` (one per row)."""

    base: Any

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        sam = torch.stack([f["sam_pixel_values"] for f in features])
        masks = [f["gt_mask"] for f in features]
        batch = self.base([{k: v for k, v in f.items() if k not in ("sam_pixel_values", "gt_mask")} for f in features])
        batch["sam_pixel_values"], batch["gt_masks"] = sam, masks
        return batch


@dataclass
class SegmentationTraining:
    """What the trainer needs: the head, the [SEG] id and the loss settings."""

    head: SegmentationHead
    seg_token_id: int
    settings: SegmentationSettings
    keys: tuple[str, ...] = field(default=("sam_pixel_values", "gt_masks"), init=False)

    def pop_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Take the head's inputs out of a batch (the language model does not accept them)."""
        missing = [k for k in self.keys if k not in inputs]
        if missing:
            raise ValueError(f"segmentation is enabled but the batch has no {missing}: use SegmentationCollator")
        return {k: inputs.pop(k) for k in self.keys}

    def loss(self, last_hidden: torch.Tensor, input_ids: torch.Tensor, seg_inputs: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        """BCE + DICE over the rows that have a mask and a [SEG] token; None when no row has both."""
        rows, positions, masks = [], [], []
        for row, mask in enumerate(seg_inputs["gt_masks"]):
            where = (input_ids[row] == self.seg_token_id).nonzero()
            if mask.numel() and len(where):
                rows.append(row)
                positions.append(int(where[0, 0]))  # the first [SEG]: one per answer in Perceptio's format
                masks.append(mask.to(last_hidden.device))
        if not rows:
            return None
        index = torch.tensor(rows, device=last_hidden.device)
        hidden = last_hidden[index, torch.tensor(positions, device=last_hidden.device)]
        logits = self.head(seg_inputs["sam_pixel_values"][index], hidden)
        return segmentation_loss(logits, masks, self.settings)

    def save_checkpoint(self, folder: str | Path) -> None:
        self.head.save_pretrained(folder, self.settings)

    def load_checkpoint(self, folder: str | Path) -> None:
        """Resume: the head's weights from a Trainer checkpoint folder (written by :meth:`save_checkpoint`)."""
        from safetensors.torch import load_file

        path = Path(folder) / WEIGHTS_FILE
        if not path.is_file():
            raise ValueError(f"{folder}: checkpoint has no {WEIGHTS_FILE}; cannot resume the segmentation head")
        state = load_file(str(path))
        if set(state) != set(self.head.saved_state()):
            raise ValueError(f"{path}: does not match this run's segmentation head")
        self.head.load_state_dict(state, strict=False)


def segmentation_for_run(config, model, token_map, dataset, collator, device):
    """``(dataset, collator, SegmentationTraining | None)`` for a family's run: unchanged when disabled."""
    settings: SegmentationSettings = config.segmentation
    if not settings.enabled:
        return dataset, collator, None
    if SEG_TOKEN not in token_map.ids:
        raise ValueError(f"segmentation is enabled but the tokenizer has no {SEG_TOKEN} token")
    hidden = int(model.config.get_text_config().hidden_size)
    head = SegmentationHead.build(settings.sam2_checkpoint, hidden, seed=config.seed).to(device)
    training = SegmentationTraining(head, token_map.ids[SEG_TOKEN], settings)
    return SegmentationDataset(dataset, head), SegmentationCollator(collator), training


def has_saved_head(adapter_dir: str | Path) -> bool:
    return (Path(adapter_dir) / WEIGHTS_FILE).is_file() and (Path(adapter_dir) / RECORD_FILE).is_file()


@torch.no_grad()
def teacher_forced_masks(model, head: SegmentationHead, batch: dict[str, Any], seg_token_id: int) -> list[torch.Tensor | None]:
    """Mask logits at each row's ground-truth size (or its image's SAM2 size without one) from the
    hidden state at the row's first [SEG], reading the batch's own conversation; None for a row without [SEG]."""
    inputs = {k: v for k, v in batch.items() if k not in ("sam_pixel_values", "gt_masks", "labels")}
    last = model(**inputs, output_hidden_states=True).hidden_states[-1]
    out: list[torch.Tensor | None] = []
    for row in range(last.shape[0]):
        where = (inputs["input_ids"][row] == seg_token_id).nonzero()
        if not len(where):
            out.append(None)
            continue
        logits = head(batch["sam_pixel_values"][row : row + 1], last[row : row + 1, int(where[0, 0])])
        size = batch["gt_masks"][row].shape if batch["gt_masks"][row].numel() else logits.shape[-2:]
        out.append(upsample(logits[0], size))
    return out
