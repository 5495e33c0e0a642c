"""LLaVA conversation records -> model inputs with assistant-only labels, in curriculum order.

A record is LLaVA's ``{"id", "image", "conversations": [{"from": "human", "value":
"<image>\\n..."}, {"from": "gpt", "value": "..."}, ...]}``. It is rendered with the
processor's chat template (LLaVA-1.5's ``USER: <image>\\n{q} ASSISTANT: {a}</s>`` when it
has none); labels are ``-100`` everywhere except the assistant answers (each followed by
eos so the model learns to stop): the prompt, the expanded image placeholder tokens and
padding never count. The dataset keeps the records' order and the sampler never shuffles,
because the curriculum *is* the order.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset, SequentialSampler

from training.finetune.collate import pad_right

IGNORE_INDEX = -100
IMAGE_PLACEHOLDER = "<image>"
ROLE_OF = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


class RecordError(ValueError):
    """A conversation record that cannot be used; the message names the source and the problem."""


# ---------------------------------------------------------------------------- records


def load_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a LLaVA JSON list (or JSON-lines) file and validate every record's structure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"{path}: cannot read records ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text ({exc})") from exc
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: malformed JSON ({exc})") from exc
    if not isinstance(records, list):
        raise RecordError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    for i, rec in enumerate(records):
        validate_record(rec, where=f"{path} record {i}")
    return records


def validate_record(record: Any, where: str = "record") -> None:
    """Raise RecordError unless ``record`` is a usable single-image LLaVA conversation."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: not an object")
    for key in ("id", "image", "conversations"):
        if key not in record:
            raise RecordError(f"{where}: missing {key!r}")
    if not isinstance(record["image"], str) or not record["image"]:
        raise RecordError(f"{where} ({record['id']}): 'image' must be a non-empty relative path")
    conv = record["conversations"]
    if not isinstance(conv, list) or not conv:
        raise RecordError(f"{where} ({record['id']}): 'conversations' must be a non-empty list")
    n_images = 0
    for j, turn in enumerate(conv):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str) or turn.get("from") not in ROLE_OF:
            raise RecordError(f"{where} ({record['id']}): turn {j} needs 'from' in {sorted(ROLE_OF)} and a string 'value'")
        n_images += turn["value"].count(IMAGE_PLACEHOLDER)
    if n_images != 1:
        raise RecordError(f"{where} ({record['id']}): expected exactly one {IMAGE_PLACEHOLDER} placeholder, found {n_images}")
    if not any(ROLE_OF[t["from"]] == "assistant" for t in conv):
        raise RecordError(f"{where} ({record['id']}): no assistant ('gpt') turn to learn from")


def to_messages(conversations: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """LLaVA turns -> chat-template messages with HF content parts (image part first)."""
    messages = []
    for turn in conversations:
        role = ROLE_OF[turn["from"]]
        value = turn["value"]
        parts: list[dict[str, str]] = []
        if IMAGE_PLACEHOLDER in value:
            # LLaVA writes "<image>\n{text}" (sometimes "{text}\n<image>"): the image goes first.
            value = value.replace(IMAGE_PLACEHOLDER + "\n", "").replace("\n" + IMAGE_PLACEHOLDER, "")
            value = value.replace(IMAGE_PLACEHOLDER, "").strip()
            parts.append({"type": "image"})
        parts.append({"type": "text", "text": value})
        messages.append({"role": role, "content": parts})
    return messages


def question_messages(question: str) -> list[dict[str, Any]]:
    """A single user turn asking ``question`` about one image."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]


# ---------------------------------------------------------------------------- rendering


def render_llava15(messages: Sequence[dict[str, Any]], eos_token: str, add_generation_prompt: bool = False) -> str:
    """LLaVA-1.5's format, used when the processor has no chat template."""
    out = []
    for m in messages:
        content = m["content"]
        if not isinstance(content, str):
            content = "".join(
                IMAGE_PLACEHOLDER + "\n" if p["type"] == "image" else p.get("text", "") for p in content
            )
        if m["role"] == "user":
            out.append("USER: " + content)
        elif m["role"] == "assistant":
            out.append(" ASSISTANT: " + content + eos_token)
        else:
            out.append(m["role"].upper() + ": " + content)
    if add_generation_prompt:
        out.append(" ASSISTANT:")
    return "".join(out)


def render(processor, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = False) -> str:
    """Render ``messages`` with the processor's chat template, or LLaVA-1.5's format without one."""
    if not messages:
        return ""
    if getattr(processor, "chat_template", None):
        return processor.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    return render_llava15(messages, processor.tokenizer.eos_token, add_generation_prompt)


def generation_prompt(processor, question: str) -> str:
    """The prompt text for asking ``question`` about one image (ends where the answer starts)."""
    return render(processor, question_messages(question), add_generation_prompt=True)


def render_with_targets(processor, messages: Sequence[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """Full training text and the character ranges of the assistant answers in it.

    Each answer's range is what the template adds between "prompt up to the generation
    prompt" and "prompt including the answer"; eos is appended to an answer when the
    template does not end it with one (HF's llava template does not).
    """
    eos = processor.tokenizer.eos_token
    text, targets, rendered_so_far = "", [], ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = render(processor, messages[:i], add_generation_prompt=True)
        upto = render(processor, messages[: i + 1])
        if not (prefix.startswith(rendered_so_far) and upto.startswith(prefix)):
            raise RecordError("chat template does not render conversations incrementally; cannot locate answers")
        text += prefix[len(rendered_so_far) :]
        answer = upto[len(prefix) :]
        if eos and not answer.rstrip().endswith(eos):
            answer += eos
        targets.append((len(text), len(text) + len(answer)))
        text += answer
        rendered_so_far = upto
    full = render(processor, messages)
    text += full[len(rendered_so_far) :]
    return text, targets


# ---------------------------------------------------------------------------- encoding


def image_token_count(processor, pixel_values: torch.Tensor) -> int:
    """How many placeholder tokens one image expands to (the processor's own rule)."""
    if hasattr(processor, "replace_image_token"):
        return len(processor.replace_image_token({"pixel_values": pixel_values}, 0)) // len(processor.image_token)
    height, width = pixel_values.shape[-2:]
    n = (height // processor.patch_size) * (width // processor.patch_size) + processor.num_additional_image_tokens
    return n - 1 if processor.vision_feature_select_strategy == "default" else n


def encode_conversation(
    processor, messages: Sequence[dict[str, Any]], image: Image.Image, max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """One conversation + its image -> ``input_ids``, ``attention_mask``, ``labels``, ``pixel_values``.

    The image placeholder is expanded exactly as the processor does, so ``input_ids``
    equal ``processor(images=..., text=...)``'s; a token is a target iff its first
    character lies inside an assistant answer.
    """
    pixel_values = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    text, targets = render_with_targets(processor, messages)
    image_token = processor.image_token
    expanded_image = image_token * image_token_count(processor, pixel_values)
    # Expand the placeholder and shift the answer ranges by what was inserted before them.
    pieces, shift, cursor, new_targets = [], 0, 0, []
    positions = [i for i in range(len(text)) if text.startswith(image_token, i)]
    for pos in positions:
        pieces.append(text[cursor:pos] + expanded_image)
        cursor = pos + len(image_token)
    pieces.append(text[cursor:])
    for start, end in targets:
        before = sum(1 for p in positions if p < start) * (len(expanded_image) - len(image_token))
        new_targets.append((start + before, end + before))
    expanded = "".join(pieces)
    enc = processor.tokenizer(expanded, return_offsets_mapping=True, add_special_tokens=True)
    input_ids = torch.tensor(enc["input_ids"], dtype=torch.long)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for k, (s, e) in enumerate(enc["offset_mapping"]):
        if e > s and any(ts <= s < te for ts, te in new_targets):
            labels[k] = input_ids[k]
    if max_length is not None and len(input_ids) > max_length:
        raise RecordError(f"conversation is {len(input_ids)} tokens, longer than max_length={max_length}")
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "pixel_values": pixel_values[0],
    }


def safe_image_path(image_dir: str | os.PathLike, relative: str) -> Path:
    """``image_dir / relative``, refusing paths that escape ``image_dir``."""
    root = Path(image_dir).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise RecordError(f"image path {relative!r} escapes the image folder {root}")
    return path


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: cannot read image ({exc})") from exc


class ConversationDataset(Dataset):
    """LLaVA records, in the given order, encoded lazily for the model.

    ``records`` is a list of record dicts or a path to a JSON/JSONL file of them;
    images are read from ``image_dir`` (paths may not escape it). A family encodes its own way by
    setting ``encode`` (same signature as :func:`encode_conversation`).
    """

    encode = staticmethod(encode_conversation)

    def __init__(
        self,
        records: Sequence[dict[str, Any]] | str | os.PathLike,
        image_dir: str | os.PathLike,
        processor,
        max_length: int | None = None,
        image_size: int | None = None,
    ):
        if isinstance(records, (str, os.PathLike)):
            self.source = str(records)
            self.records = load_records(records)
        else:
            self.source = "records"
            self.records = list(records)
            for i, rec in enumerate(self.records):
                validate_record(rec, where=f"record {i}")
        self.image_dir = Path(image_dir)
        self.processor = processor
        self.max_length = max_length
        self.image_size = image_size  # squash to image_size x image_size (nearest) first, as Aurora's train.py:721

    def model_conversations(self, conversations: list[dict], image) -> list[dict]:
        """The conversations as this family writes them for ``image`` (LLaVA: as stored)."""
        return conversations

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rec = self.records[index]
        try:
            image = open_image(safe_image_path(self.image_dir, rec["image"]))
            if self.image_size:
                image = image.resize((self.image_size, self.image_size), resample=Image.NEAREST)
            return self.encode(self.processor, to_messages(self.model_conversations(rec["conversations"], image)), image, self.max_length)
        except RecordError as exc:
            raise RecordError(f"{self.source} record {index} ({rec['id']}): {exc}") from exc


@dataclass
class LlavaCollator:
    """Right-pads a batch: input ids with the pad id, labels with -100, attention with 0."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = pad_right(features, {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": IGNORE_INDEX}, longest)
        batch["pixel_values"] = torch.stack([f["pixel_values"] for f in features])
        return batch


def curriculum_sampler(dataset: Dataset) -> SequentialSampler:
    """The curriculum order is the data order: a sampler that never shuffles."""
    return SequentialSampler(dataset)
