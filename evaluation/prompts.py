"""The prompt of a benchmark row for each mode (direct / CoT) and the answer prefix of each
ablation (oracle / random depth tokens), as :mod:`evaluation.generate` feeds the model."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
from PIL import Image

from perception_tokens.curriculum.aurora_reference import COUNT_COT_SUFFIX as AURORA_COUNT_COT_SUFFIX
from perception_tokens.curriculum.templates import (
    COUNT_COT_INSTRUCTION,
    DEPTH_COT_INSTRUCTION,
    DEPTH_MAP_SENTENCE,
)
from perception_tokens.images import decode_rgb
from perception_tokens.llava_conversation import render_prompt
from perception_tokens.vocab import DEPTH_SPAN, NUM_DEPTH_CODES, TokenParseError, decode_depth, encode_depth

FALLBACK_PROMPT = "USER: <image>\n{question} ASSISTANT:"

_PLURAL_RE = re.compile(r"how many (.+?) (?:are|is) (?:there|in|visible|shown)", re.I)


def task_kind(row: dict) -> str | None:
    """``"depth"`` for relative-depth rows, ``"count"`` for counting rows, else ``None``."""
    if row["benchmark"] == "HardBLINK" or (row["benchmark"] == "BLINK" and row["subset"] == "Relative_Depth"):
        return "depth"
    if row.get("answer_type") == "number" or row["subset"] in ("Counting", "Count"):
        return "count"
    return None


def counted_plural(question: str) -> str:
    """The counted noun of "How many <plural> are in the image?", else "objects"."""
    m = _PLURAL_RE.search(question)
    return m.group(1).strip() if m else "objects"


# (benchmark, subset) rows the paper asks without their answer choices (prompts="paper")
CHOICES_REMOVED = {("BLINK", "Relative_Depth"), ("CV-Bench", "Count")}


def base_prompt(row: dict, prompts: str = "benchmark") -> str:
    """The row's question as the model sees it before any CoT instruction.

    ``"benchmark"``: the benchmark's multiple-choice prompt (question + choices). ``"paper"``:
    Aurora's protocol, which removes the answer choices for BLINK 2-point relative depth and
    CV-Bench counting (the question alone: the model names a point letter or a number, which
    parsing maps onto the choices); other rows keep their prompt."""
    if prompts not in ("benchmark", "paper"):
        raise ValueError(f"prompts must be 'benchmark' or 'paper', got {prompts!r}")
    if prompts == "paper" and (row["benchmark"], row["subset"]) in CHOICES_REMOVED:
        return row["question"].strip()
    return row["prompt"].rstrip()


def build_question(row: dict, mode: str, count_cot_instruction: str = "project", prompts: str = "benchmark") -> tuple[str, str]:
    """``(question text, mode actually used)`` for a row.

    Counting CoT: ``"project"`` appends this project's instruction on a new line; ``"aurora"``
    appends the suffix of Aurora's CoT training question (create_bbox_annealing_data.ipynb
    cell 5: ``"?.\n To solve this, let's ..."``) after the question's own "?". ``prompts``:
    see :func:`base_prompt`."""
    prompt = base_prompt(row, prompts)
    kind = task_kind(row)
    if mode == "direct" or kind is None:
        return prompt, "direct"
    if kind == "depth":
        return prompt + "\n" + DEPTH_COT_INSTRUCTION, "cot"
    plural = counted_plural(row["question"])
    if count_cot_instruction == "aurora":
        return prompt + AURORA_COUNT_COT_SUFFIX.format(plural=plural), "cot"
    return prompt + "\n" + COUNT_COT_INSTRUCTION.format(plural=plural), "cot"


def build_prompt(processor: Any, question: str, conversation: str = "adapter") -> str:
    """The full text prompt with the image placeholder, ending where the answer starts.

    ``conversation="adapter"`` uses the processor's chat template (saved with the adapter);
    a LLaVA template name (``llava_v1``, ``vicuna_v1``) renders that one instead."""
    if conversation not in ("adapter", "plain"):
        return render_prompt(conversation, question).replace("<image>", getattr(processor, "image_token", "<image>"))
    template = getattr(processor, "chat_template", None)
    if template:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return processor.apply_chat_template(messages, add_generation_prompt=True)
    return FALLBACK_PROMPT.format(question=question)


def _row_seed(seed: int, row: dict) -> int:
    key = f"{seed}|{row['benchmark']}|{row['subset']}|{row['question_id']}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")


def random_depth_span(seed: int, row: dict) -> str:
    """100 uniformly random depth codes, reproducible per (seed, row)."""
    rng = np.random.default_rng(_row_seed(seed, row))
    return encode_depth(rng.integers(0, NUM_DEPTH_CODES, size=DEPTH_SPAN).tolist())


def answer_prefix(row: dict, ablation: str, seed: int, depth_prefix=None) -> tuple[str, str | None]:
    """``(prefix, error)``: the text put at the start of the answer for an ablation; ``depth_prefix``
    (depth span -> prefix) replaces Aurora's sentence (Perceptio's ``[SEG] <span>``)."""
    if ablation in ("normal", "none"):
        return "", None
    if task_kind(row) != "depth":
        return "", f"ablation {ablation!r} applies to relative-depth rows only"
    if ablation == "random":
        span = random_depth_span(seed, row)
    else:
        oracle = row.get("oracle_depth")
        if oracle is None:
            return "", "no oracle depth tokens for this row"
        try:
            span = encode_depth(decode_depth(oracle)) if isinstance(oracle, str) else encode_depth(list(oracle))
        except TokenParseError as exc:
            return "", f"oracle depth tokens unusable: {exc.reason}"
    return (depth_prefix(span) if depth_prefix else DEPTH_MAP_SENTENCE.format(depth=span)), None


def load_image(row: dict, size: int) -> Image.Image:
    """The row's image as RGB, resized to ``size`` x ``size`` with nearest neighbour (as Aurora's eval)."""
    rgb = decode_rgb(row["image_bytes"])
    image = Image.fromarray(rgb)
    return image.resize((size, size), resample=Image.NEAREST) if size else image
