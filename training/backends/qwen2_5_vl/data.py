"""LLaVA curriculum records -> Qwen2.5-VL inputs with labels on the assistant turns only.

Each record is rendered with Qwen's chat template (``<|im_start|>system ... <|im_end|>``,
``<|vision_start|><|image_pad|><|vision_end|>`` for the image) and encoded by the Qwen
processor itself, so the image placeholder is expanded to ``image_grid_thw.prod() / 4``
tokens for this image's own resolution (dynamic, within min/max pixels).

Boxes and points are rewritten to Qwen's own convention first (absolute pixels on the
resized image, plain integers: :mod:`training.backends.qwen2_5_vl.coordinates`); depth
maps stay perception tokens.

Labels follow Qwen's template: a token is a target iff it lies in an assistant turn's
content, from after ``<|im_start|>assistant\\n`` through its ``<|im_end|>`` (so the model
learns to stop); system, user, image and the newline after ``<|im_end|>`` are ``-100``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from training.llava.data import (
    IGNORE_INDEX,
    ConversationDataset,
    RecordError,
)

from training.backends.qwen2_5_vl.coordinates import ResizedFrame, to_model_conversations
from training.backends.qwen2_5_vl.model import IM_END, IM_START
from training.finetune.collate import pad_right


def assistant_label_mask(input_ids: Sequence[int], tokenizer) -> torch.Tensor:
    """Bool mask of the target tokens: each assistant turn's content and its closing ``<|im_end|>``."""
    start = tokenizer.convert_tokens_to_ids(IM_START)
    end = tokenizer.convert_tokens_to_ids(IM_END)
    header = tokenizer("assistant\n", add_special_tokens=False)["input_ids"]
    ids = list(input_ids)
    mask = torch.zeros(len(ids), dtype=torch.bool)
    i = 0
    while i < len(ids):
        if ids[i] == start and ids[i + 1 : i + 1 + len(header)] == header:
            j = i + 1 + len(header)
            k = j
            while k < len(ids) and ids[k] != end:
                k += 1
            if k == len(ids):
                raise RecordError("an assistant turn has no closing <|im_end|>")
            mask[j : k + 1] = True
            i = k + 1
        else:
            i += 1
    return mask


def encode_conversation(processor, messages: Sequence[dict[str, Any]], image, max_length: int | None = None) -> dict[str, torch.Tensor]:
    """One conversation + its image -> input_ids, attention_mask, mm_token_type_ids, labels,
    pixel_values ``[patches, C*T*P*P]`` and image_grid_thw ``[1, 3]``."""
    text = processor.apply_chat_template(list(messages), tokenize=False)
    enc = processor(images=[image], text=[text], return_tensors="pt")
    input_ids = enc["input_ids"][0]
    mask = assistant_label_mask(input_ids.tolist(), processor.tokenizer)
    if not mask.any():
        raise RecordError("no assistant answer to learn from after rendering with the chat template")
    if max_length is not None and len(input_ids) > max_length:
        raise RecordError(f"conversation is {len(input_ids)} tokens, longer than max_length={max_length}")
    labels = torch.where(mask, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return {
        "input_ids": input_ids,
        "attention_mask": enc["attention_mask"][0],
        "mm_token_type_ids": enc["mm_token_type_ids"][0],
        "labels": labels,
        "pixel_values": enc["pixel_values"],
        "image_grid_thw": enc["image_grid_thw"],
    }


class QwenConversationDataset(ConversationDataset):
    """The LLaVA records (same validation, same order) encoded for Qwen2.5-VL, their boxes and
    points in pixels of each image as the processor resizes it."""

    encode = staticmethod(encode_conversation)

    def model_conversations(self, conversations, image):
        """Boxes and points from the 336 grid to pixels of ``image`` as the processor resizes it."""
        return to_model_conversations(conversations, ResizedFrame.of_image(self.processor, image.height, image.width))


@dataclass
class QwenCollator:
    """Right-pads token tensors; concatenates every image's patches and grid (Qwen's packed layout)."""

    pad_token_id: int

    def __call__(self, features: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        batch = pad_right(features, {"input_ids": self.pad_token_id, "attention_mask": 0, "mm_token_type_ids": 0,
                                     "labels": IGNORE_INDEX})
        batch["pixel_values"] = torch.cat([f["pixel_values"] for f in features])
        batch["image_grid_thw"] = torch.cat([f["image_grid_thw"] for f in features])
        return batch
