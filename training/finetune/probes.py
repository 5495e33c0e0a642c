"""Probes of a (fine-tuned) model: greedy answers to the atomic depth question and how often
they are exactly one well-formed depth span; for Perceptio, greedy answers to the curriculum's
referring prompts and how often they are ``[SEG]``, one depth span, then an answer, in that order.
Any family: the prompt comes from its processor."""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from perception_tokens.curriculum.perceptio_text import well_ordered_answer
from perception_tokens.token_kinds import SEG_TOKEN
from perception_tokens.vocab import TokenParseError, decode_depth
from training.llava.data import generation_prompt, open_image, safe_image_path

DEPTH_PROMPT = "What is the depth map for the image?"


def generate_depth_answers(
    model,
    processor,
    images: Sequence[Any],
    *,
    image_dir: str | os.PathLike | None = None,
    max_new_tokens: int = 110,
    batch_size: int = 8,
    question: str = DEPTH_PROMPT,
) -> list[str]:
    """Greedy answers to the atomic depth question for each image (PIL image or LLaVA record)."""
    return generate_answers(model, processor, images, [question] * len(images), image_dir=image_dir,
                            max_new_tokens=max_new_tokens, batch_size=batch_size)


@torch.no_grad()
def generate_answers(
    model,
    processor,
    images: Sequence[Any],
    questions: Sequence[str],
    *,
    image_dir: str | os.PathLike | None = None,
    max_new_tokens: int = 110,
    batch_size: int = 8,
) -> list[str]:
    """Greedy answers, one per (image, question) pair (image: PIL image or LLaVA record)."""
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images for {len(questions)} questions")
    prompts = [generation_prompt(processor, q) for q in questions]
    tokenizer = processor.tokenizer
    device = next(model.parameters()).device
    answers: list[str] = []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            chunk = [_as_image(item, image_dir) for item in images[start : start + batch_size]]
            text = prompts[start : start + batch_size]
            inputs = processor(images=chunk, text=text, return_tensors="pt", padding=True).to(device)
            inputs["pixel_values"] = inputs["pixel_values"].to(next(model.parameters()).dtype)
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = out[:, inputs["input_ids"].shape[1] :]
            answers += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return answers


def _as_image(item: Any, image_dir: str | os.PathLike | None):
    if isinstance(item, dict):
        if image_dir is None:
            raise ValueError(f"record {item.get('id')}: an image_dir is needed to read its image")
        return open_image(safe_image_path(image_dir, item["image"]))
    return item


def is_wellformed_depth_answer(text: str) -> bool:
    """True iff ``text`` is exactly one depth span: START + 100 valid codes + END."""
    try:
        decode_depth(text)
    except TokenParseError:
        return False
    return True


def depth_span_wellformed_rate(
    model,
    processor,
    records: Sequence[Any],
    max_new_tokens: int = 110,
    *,
    image_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
) -> float:
    """Fraction of images whose greedy answer to the depth question is exactly one valid span."""
    if not records:
        return float("nan")
    answers = generate_depth_answers(
        model, processor, records, image_dir=image_dir, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    return sum(is_wellformed_depth_answer(a) for a in answers) / len(answers)


def depth_probe_records(records: Sequence[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` records whose first turn asks the atomic depth question."""
    return [r for r in records if DEPTH_PROMPT in r["conversations"][0]["value"]][:limit]


def order_probe_records(records: Sequence[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` records whose answer starts with ``[SEG]`` (Perceptio's referring samples)."""
    return [r for r in records if r["conversations"][1]["value"].lstrip().startswith(SEG_TOKEN)][:limit]


def question_of(record: dict[str, Any]) -> str:
    """The first human turn without LLaVA's ``<image>`` line."""
    return record["conversations"][0]["value"].replace("<image>\n", "", 1).replace("<image>", "").strip()


def well_ordered_rate(model, processor, records: Sequence[dict[str, Any]], *, image_dir: str | os.PathLike,
                      max_new_tokens: int = 160, batch_size: int = 8) -> float:
    """Fraction of ``records`` whose greedy answer to their own question is ``[SEG]`` -> depth span -> answer."""
    if not records:
        return float("nan")
    answers = generate_answers(model, processor, records, [question_of(r) for r in records], image_dir=image_dir,
                               max_new_tokens=max_new_tokens, batch_size=batch_size)
    return sum(well_ordered_answer(a) for a in answers) / len(answers)
