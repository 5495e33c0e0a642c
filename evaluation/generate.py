"""Batched greedy generation for benchmark rows, in the prompt format used in training.

Prompt: the processor's chat template (LLaVA-1.5: ``"USER: <image>\\n{question} ASSISTANT:"``),
or that string when the processor has no template. Modes:

- ``direct``: the benchmark prompt as is (answer only);
- ``cot``: the prompt + "\\n" + the training curriculum's step-by-step instruction
  (depth instruction for relative-depth rows, counting instruction for counting rows;
  other rows stay direct and say so in ``mode_used``).

Ablations for the depth rows (``ablation``):

- ``normal``: the model writes its own perception tokens;
- ``oracle``: the teacher's depth tokens (``row["oracle_depth"]``: a span string or 100
  codes) are put at the start of the answer ("The depth map for the image is <...>.")
  and the model only continues to the answer;
- ``random``: the same prefix with 100 random depth codes (seeded per row);
- ``none``: direct answering, no perception tokens.

Left padding, optional constrained decoding (:class:`~evaluation.constrained.DepthSpanLogitsProcessor`),
per-sample latency. Every output row carries the raw text and the perception-token
spans it contains, so an answer can be re-parsed or audited later.

The prompts and ablation prefixes are built in :mod:`evaluation.prompts`, the spans found
in :mod:`evaluation.answer_spans`; this module runs the model.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList

from perception_tokens.images import BadImageError, probe_image
from perception_tokens.vocab import DEPTH_START, PIXEL_GRID

from evaluation.answer_spans import perception_spans, tighten
from evaluation.constrained import DepthSpanLogitsProcessor
from evaluation.parsing import parse_answer
from evaluation.perceptio import MODE as PERCEPTIO_MODE, answer_after_perception, perceptio_question
from perception_tokens.curriculum.perceptio_text import perception_prefix
from evaluation.prompts import (  # re-exported: callers import the prompt builders from here
    FALLBACK_PROMPT,
    answer_prefix,
    base_prompt,
    build_prompt,
    build_question,
    counted_plural,
    load_image,
    random_depth_span,
    task_kind,
)

__all__ = [
    "ABLATIONS", "FALLBACK_PROMPT", "GenerationSettings", "MODES", "answer_prefix", "answer_separator",
    "build_prompt", "build_question", "counted_plural", "generate_predictions", "load_image", "perception_spans",
    "random_depth_span", "task_kind", "tighten",
]

MODES = ("direct", "cot")
ABLATIONS = ("normal", "oracle", "random", "none", "actions_off")  # actions_off: VPT adapters only (evaluation/vpt_eval.py)


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate: mode, ablation, constraints, sizes. Recorded on every output row."""

    mode: str = "cot"
    ablation: str = "normal"
    constrained: bool = True
    max_new_tokens: int = 256
    batch_size: int = 8
    seed: int = 0
    image_size: int = PIXEL_GRID  # Aurora resizes every eval image to 336x336 (nearest) first
    count_cot_instruction: str = "project"  # "aurora": the counting CoT suffix of Aurora's training data
    conversation: str = "adapter"  # "adapter": the processor's template; "llava_v1" etc.: LLaVA's (model_vqa.py)
    prompts: str = "benchmark"  # "paper": BLINK 2-point depth and CV-Bench counting asked without their choices
    constrain_boxes: bool = True  # False: depth spans constrained, box tokens free (the reference constrains nothing)
    numerics: str = "project"  # "reference": fp16, LoRA merged, batch 1 (model_vqa.py, builder.py); see run.evaluate
    perceptio: bool = False  # a Perceptio adapter (segmentation head beside it): asked and parsed its way (evaluation.perceptio)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} not in {MODES}")
        if self.ablation not in ABLATIONS:
            raise ValueError(f"ablation {self.ablation!r} not in {ABLATIONS}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
        if self.numerics not in ("project", "reference"):
            raise ValueError(f"numerics {self.numerics!r} not in ('project', 'reference')")
        if self.numerics == "reference" and self.batch_size != 1:
            raise ValueError("numerics 'reference' generates one question at a time (batch_size 1), as model_vqa.py")


def _decode_new(tokenizer, ids: Sequence[int]) -> tuple[str, int]:
    """Decode generated ids up to EOS; perception tokens survive even if added as special."""
    stop = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    cut = []
    for i in ids:
        if int(i) in stop:
            break
        cut.append(int(i))
    text = tokenizer.decode(cut, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    for special in (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token):
        if special:
            text = text.replace(special, "")
    return tighten(text), len(cut)


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _public_fields(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("image_bytes", "extra_image_bytes", "oracle_depth")}


@torch.inference_mode()
def generate_predictions(
    model: Any,
    processor: Any,
    rows: Sequence[dict],
    settings: GenerationSettings = GenerationSettings(),
    *,
    extra_logits_processors: Sequence[LogitsProcessor] = (),
    progress: bool = True,
    batch_hook: Callable[[dict, torch.Tensor, list[dict]], list[dict]] | None = None,
) -> list[dict]:
    """Generate an answer for every row; one output row per input row, in input order.

    Output rows are the benchmark row (without image bytes) plus: ``raw_output`` (answer
    prefix + generated text), ``generated_text``, ``answer_prefix``, ``pred`` (parsed,
    ``None`` = unparsed), ``correct``, ``depth_spans``/``depth_spans_valid``/``boxes``,
    ``n_new_tokens``, ``latency_s`` (batch time / batch size), ``batch_latency_s``,
    ``mode_used``, ``error`` (set when a row could not be run, e.g. oracle missing) and
    the settings. ``extra_logits_processors`` run before the constraint (tests use them
    to push a model towards perception tokens). ``batch_hook(inputs, sequences, rows)`` runs after
    each batch's generation and returns fields per row that replace the output's (the masks of
    a mask benchmark: :class:`evaluation.segmentation_masks.SegMaskPredictor`).
    """
    tokenizer = processor.tokenizer
    mode = "direct" if settings.ablation == "none" else settings.mode
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    meta = {f"gen_{k}": v for k, v in asdict(settings).items()}

    prepared: list[dict] = []
    for row in rows:
        question, mode_used = build_question(row, mode, settings.count_cot_instruction, settings.prompts)
        if settings.perceptio and settings.ablation != "none":
            question, mode_used = perceptio_question(row, base_prompt(row, settings.prompts)), PERCEPTIO_MODE
        frame = answer_frame(processor, row, settings.image_size)
        if frame is not None:  # Qwen2.5-VL: "the image is W x H" of its resized image
            question = frame.to_model_text(question)
        prefix, error = answer_prefix(row, settings.ablation, settings.seed,
                                      depth_prefix=perception_prefix if settings.perceptio else None)
        prompt = build_prompt(processor, question, settings.conversation)
        separator = answer_separator(prompt)
        if prefix:
            prompt = prompt + separator + prefix
        prepared.append({"row": row, "prompt": prompt, "prefix": prefix, "separator": separator, "mode_used": mode_used,
                         "error": error, "frame": frame, "perceptio": settings.perceptio})

    results: dict[int, dict] = {}
    runnable = [i for i, p in enumerate(prepared) if p["error"] is None]
    for i, p in enumerate(prepared):
        if p["error"] is not None:
            results[i] = _output(p, "", 0, float("nan"), float("nan"), meta)

    # Built once: reading the vocabulary's token strings is the costly part.
    # a per-skill (counting) vocabulary has no depth tokens: then only boxes are constrained
    has_depth = DEPTH_START in tokenizer.get_vocab()
    constraint = (DepthSpanLogitsProcessor(tokenizer, constrain_depth=has_depth, constrain_boxes=settings.constrain_boxes)
                  if settings.constrained else None)
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batches = list(_batches(runnable, settings.batch_size))
        for batch in tqdm(batches, desc="generate", disable=not progress):
            # Images are decoded per batch (memory stays flat); one that does not decode
            # becomes that row's error instead of stopping the run.
            images, kept = [], []
            for i in batch:
                try:
                    images.append(load_image(prepared[i]["row"], settings.image_size))
                    kept.append(i)
                except BadImageError as exc:
                    prepared[i]["error"] = f"image does not decode: {exc}"
                    results[i] = _output(prepared[i], "", 0, float("nan"), float("nan"), meta)
            if not kept:
                continue
            batch = kept
            items = [prepared[i] for i in batch]
            inputs = processor(images=images, text=[p["prompt"] for p in items], return_tensors="pt", padding=True)
            inputs = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in inputs.items()}
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
            width = inputs["input_ids"].shape[1]
            processors = LogitsProcessorList(list(extra_logits_processors))
            if constraint is not None:
                # The prefix is part of the answer: its depth span counts for "one map per answer".
                constraint.prompt_length = [width - _prefix_length(tokenizer, p["prefix"], p["separator"]) for p in items]
                processors.append(constraint)
            t0 = time.perf_counter()
            out = model.generate(
                **inputs,
                max_new_tokens=settings.max_new_tokens,
                do_sample=False,
                num_beams=1,
                logits_processor=processors,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - t0
            sequences = out.sequences if hasattr(out, "sequences") else out
            extra = batch_hook(inputs, sequences, [p["row"] for p in items]) if batch_hook else [{}] * len(batch)
            for j, i in enumerate(batch):
                text, n_new = _decode_new(tokenizer, sequences[j, width:].tolist())
                results[i] = {**_output(prepared[i], text, n_new, elapsed / len(batch), elapsed, meta), **extra[j]}
    finally:
        tokenizer.padding_side = old_side
    return [results[i] for i in range(len(prepared))]


def answer_frame(processor: Any, row: dict, size: int):
    """The model family's coordinate frame for this row's image: Qwen2.5-VL's resized pixels
    (:mod:`training.backends.qwen2_5_vl.coordinates`), or ``None`` for LLaVA's 336-grid tokens."""
    from training.backends.qwen2_5_vl.coordinates import frame_for, uses_resized_frame

    if not uses_resized_frame(processor):
        return None
    if size:
        return frame_for(processor, size, size)
    try:
        info = probe_image(row["image_bytes"])
    except BadImageError:
        return None  # the batch loop records the image's error for this row
    return frame_for(processor, info.height, info.width)


def answer_separator(prompt: str) -> str:
    """What comes between a prompt and an answer: a space after LLaVA's "ASSISTANT:", nothing after
    Qwen's "<|im_start|>assistant\n" (as in training)."""
    return "" if prompt.endswith("\n") else " "


def _prefix_length(tokenizer, prefix: str, separator: str = " ") -> int:
    if not prefix:
        return 0
    return len(tokenizer(separator + prefix, add_special_tokens=False)["input_ids"])


def _output(p: dict, generated: str, n_new: int, latency: float, batch_latency: float, meta: dict) -> dict:
    row = p["row"]
    raw = (p["prefix"] + generated) if p["error"] is None else None
    # Qwen's plain-text pixels back to the grid tokens of the benchmarks' frame, for the parsers
    frame = p.get("frame")
    on_grid = frame.to_grid_text(raw) if (frame is not None and raw is not None) else raw
    answer = answer_after_perception(on_grid) if (p.get("perceptio") and on_grid is not None) else on_grid
    # a mask row's answer is its mask (batch_hook); the text around [SEG] is not parsed
    pred = parse_answer(answer, row) if (answer is not None and row.get("answer_type") != "mask") else None
    return {
        **_public_fields(row),
        "raw_output": raw,
        "generated_text": generated if p["error"] is None else None,
        "answer_prefix": p["prefix"],
        "prompt_text": p["prompt"],
        "mode_used": p["mode_used"],
        "pred": pred,
        "correct": pred is not None and pred == str(row["gold"]),
        **perception_spans(on_grid or ""),
        "n_new_tokens": n_new,
        "latency_s": latency,
        "batch_latency_s": batch_latency,
        "error": p["error"],
        "pred_mask": None,
        **meta,
    }
