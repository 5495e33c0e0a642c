"""A VPT sequence: the token ids with the perception VPT inserts (arXiv 2502.17425 Sec. 3), and the
model inputs for it. One code path for generation (:mod:`evaluation.vpt_actions`) and training
(:func:`teacher_forced`), so a teacher-forced sequence is embedded exactly as generation built it.

After a complete region the crop of the ORIGINAL image to the region's pixel box is encoded by the
model's own vision encoder and inserted as an image span ``<|vision_start|><|image_pad|>*n<|vision_end|>``
(its M-RoPE positions are an image's, from ``get_rope_index``). After ``<REENCODE_CONTROL>`` the
re-encoder's output (:class:`training.vpt.projector.ReEncoder`, keyed by the control token's last
hidden state) is inserted as ``<|vision_start|><|vision_pad|>*n<|vision_end|>`` whose embeddings are
replaced by the projector's (text positions: the paper does not say how they are placed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from perception_tokens import regions
from perception_tokens.vocab import TokenParseError
from training.backends.qwen2_5_vl.model import IMAGE_PAD, VISION_END, VISION_START

REENCODED_PAD = "<|vision_pad|>"  # placeholder rows for the projector's embeddings


@dataclass
class EncodedImage:
    """One image as the Qwen image processor gives it: patches and their ``(t, h, w)`` grid."""

    pixel_values: torch.Tensor
    grid_thw: torch.Tensor
    features: torch.Tensor | None = None  # the vision tower's output, kept by generation (no gradient there)

    def n_tokens(self, merge: int) -> int:
        return int(self.grid_thw.prod()) // (merge * merge)


def encode_image(processor, image) -> EncodedImage:
    out = processor.image_processor(images=[image], return_tensors="pt")
    return EncodedImage(out["pixel_values"], out["image_grid_thw"][0])


@dataclass
class VptSequence:
    """One row: its ids (prompt, answer, inserted spans), its images in order, the projector
    outputs and where they go, and every action taken."""

    ids: list[int]
    prompt_length: int
    original: object  # the PIL image crops are cut from
    images: list[EncodedImage]
    answer: list[int] = field(default_factory=list)  # what the model wrote (no inserted spans)
    reencoded: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (first placeholder index, [n, d])
    actions: list[dict] = field(default_factory=list)
    pending_control: bool = False  # the control token was written; its hidden state comes with the next forward
    finished: bool = False


def start_sequence(processor, prompt_text: str, image) -> VptSequence:
    """The prompt (a chat text with one image placeholder, e.g. from ``apply_chat_template``) and its image."""
    enc = processor(text=[prompt_text], images=[image], return_tensors="pt")
    ids = enc["input_ids"][0].tolist()
    return VptSequence(ids, len(ids), image.convert("RGB"), [EncodedImage(enc["pixel_values"], enc["image_grid_thw"][0])])


class Inserter:
    """Appends tokens to a :class:`VptSequence` and runs the action a token completes."""

    def __init__(self, model, processor, reencoder=None, *, max_actions: int = 4):
        self.model, self.processor, self.reencoder, self.max_actions = model, processor, reencoder, max_actions
        tok = processor.tokenizer
        conv = tok.convert_tokens_to_ids
        self.vision_start, self.vision_end = conv(VISION_START), conv(VISION_END)
        self.image_pad, self.reencoded_pad = conv(IMAGE_PAD), conv(REENCODED_PAD)
        self.region_start, self.region_end = conv(regions.REGION_START), conv(regions.REGION_END)
        self.control = conv(regions.REENCODE_CONTROL)
        self.merge = model.config.vision_config.spatial_merge_size
        self.grid = regions.grid_in_vocabulary(tok.get_vocab())
        self.tokenizer = tok

    def actions_left(self, seq: VptSequence) -> bool:
        return len(seq.actions) < self.max_actions

    def completed_region(self, seq: VptSequence) -> regions.RegionCells | None:
        """The region the last six answer tokens close, or None."""
        last = seq.answer[-regions.REGION_TOKENS:]
        if len(last) < regions.REGION_TOKENS or last[-1] != self.region_end or last[0] != self.region_start:
            return None
        try:
            return regions.decode_region("".join(self.tokenizer.convert_ids_to_tokens(last)), self.grid)
        except TokenParseError:
            return None  # unconstrained generation may write a malformed one: no action

    def append(self, seq: VptSequence, token: int) -> None:
        """Append one answer token; a closed region inserts its crop now, a control token waits
        for its hidden state (:meth:`reencode`)."""
        seq.ids.append(token)
        seq.answer.append(token)
        if not self.actions_left(seq):
            return
        region = self.completed_region(seq)
        if region is not None:
            self.insert_crop(seq, region)
        elif token == self.control and self.reencoder is not None:
            seq.pending_control = True

    def insert_crop(self, seq: VptSequence, region: regions.RegionCells) -> None:
        width, height = seq.original.size
        box = region.pixel_box(width, height)
        crop = encode_image(self.processor, seq.original.crop(box))
        seq.ids += [self.vision_start] + [self.image_pad] * crop.n_tokens(self.merge) + [self.vision_end]
        seq.images.append(crop)
        seq.actions.append({"kind": "region", "cells": list(region.as_tuple()), "grid": region.grid,
                            "box_px": list(box), "answer_position": len(seq.answer)})

    def reencode(self, seq: VptSequence, control_hidden: torch.Tensor) -> None:
        """Insert the re-encoder's embeddings for the control token whose hidden state is given."""
        embeds = self.reencoder(seq.original, control_hidden.reshape(1, -1))
        seq.ids.append(self.vision_start)
        seq.reencoded.append((len(seq.ids), embeds))
        seq.ids += [self.reencoded_pad] * len(embeds) + [self.vision_end]
        seq.pending_control = False
        seq.actions.append({"kind": "reencode", "n_embeddings": len(embeds), "answer_position": len(seq.answer)})


def image_features(model, images: list[EncodedImage], *, keep: bool) -> torch.Tensor:
    """The vision tower's output for ``images``, concatenated in order. ``keep``: reuse and store each
    image's features (generation re-embeds the whole sequence every step; training must not keep them,
    its gradient flows into the merger)."""
    missing = [im for im in images if not keep or im.features is None]
    if missing:
        device = model.device
        pixels = torch.cat([im.pixel_values for im in missing]).to(device)
        grid = torch.stack([im.grid_thw for im in missing]).to(device)
        computed = _vlm(model).model.get_image_features(pixels, grid).pooler_output
        if not keep:
            return torch.cat(computed)
        for im, feats in zip(missing, computed):
            im.features = feats
    return torch.cat([im.features for im in images])


def model_inputs(model, sequences: list[VptSequence], pad_id: int, *, keep_features: bool = False) -> dict:
    """``inputs_embeds`` (text, every image's features, the projector outputs), ``attention_mask`` and
    M-RoPE ``position_ids`` for a left-padded batch of sequences (``use_cache=False``: the next call
    re-embeds a changed sequence)."""
    width = max(len(s.ids) for s in sequences)
    device = model.device
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, s in enumerate(sequences):
        input_ids[row, width - len(s.ids):] = torch.tensor(s.ids)
        attention_mask[row, width - len(s.ids):] = 1
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    images = [im for s in sequences for im in s.images]  # token order: row by row, left to right
    grid_thw = torch.stack([im.grid_thw for im in images]).to(device)
    embeds = model.get_input_embeddings()(input_ids)
    features = image_features(model, images, keep=keep_features).to(embeds.dtype)
    image_mask = (input_ids == model.config.image_token_id)
    embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), features)
    if any(s.reencoded for s in sequences):
        embeds = embeds.clone()
        for row, s in enumerate(sequences):
            offset = width - len(s.ids)
            for start, e in s.reencoded:
                embeds[row, offset + start: offset + start + len(e)] = e.to(embeds.dtype)
    position_ids, _ = _vlm(model).model.get_rope_index(input_ids, mm_token_type_ids=image_mask.int(), image_grid_thw=grid_thw,
                                                 attention_mask=attention_mask)
    return {"inputs_embeds": embeds, "attention_mask": attention_mask, "position_ids": position_ids, "use_cache": False}


def _vlm(model):
    """The Qwen-VL model under a peft wrapper (an evaluated adapter), whose ``.model`` holds the vision
    tower and the M-RoPE index; the model itself when it is not wrapped."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def last_hidden(model, sequences: list[VptSequence], pad_id: int) -> torch.Tensor:
    """Each row's last-layer hidden state at its last position, ``[batch, d]``."""
    out = model(**model_inputs(model, sequences, pad_id), output_hidden_states=True)
    return out.hidden_states[-1][:, -1]


def teacher_forced(inserter: Inserter, seq: VptSequence, answer: list[int]) -> VptSequence:
    """Training's view: ``seq`` (a fresh prompt) with ``answer`` appended token by token, each crop and
    re-encoding inserted where generation inserts it (the control token's hidden state from a forward
    over the prefix). Labels: :func:`labels`."""
    pad = inserter.tokenizer.pad_token_id
    for token in answer:
        inserter.append(seq, int(token))
        if seq.pending_control:
            inserter.reencode(seq, last_hidden(inserter.model, [seq], pad)[0])
    return seq


def labels(inserter: Inserter, seq: VptSequence) -> torch.Tensor:
    """LM targets for ``seq.ids``: the answer tokens, except the control token (Sec. 3.2: no LM loss
    on it); -100 on the prompt and the inserted spans."""
    out = torch.full((len(seq.ids),), -100, dtype=torch.long)
    inserted = set()
    for start, e in seq.reencoded:
        inserted.update(range(start - 1, start + len(e) + 1))
    in_image = False
    for i in range(seq.prompt_length, len(seq.ids)):
        tok = seq.ids[i]
        if tok == inserter.vision_start and i not in inserted:
            in_image = True
        if not in_image and i not in inserted and tok != inserter.control:
            out[i] = tok
        if tok == inserter.vision_end:
            in_image = False
    return out


def training_batch(inserter: Inserter, sequences: list[VptSequence]) -> dict:
    """Model inputs and left-padded :func:`labels` for teacher-forced sequences: ``model(**batch).loss``."""
    batch = model_inputs(inserter.model, sequences, inserter.tokenizer.pad_token_id)
    width = batch["attention_mask"].shape[1]
    target = torch.full((len(sequences), width), -100, dtype=torch.long)
    for row, seq in enumerate(sequences):
        target[row, width - len(seq.ids):] = labels(inserter, seq)
    batch["labels"] = target.to(batch["attention_mask"].device)
    return batch
