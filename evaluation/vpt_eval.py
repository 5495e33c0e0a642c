"""Benchmark evaluation of a VPT adapter (arXiv 2502.17425): every question through the generation loop
with actions (:func:`evaluation.vpt_actions.generate_with_actions`), batched, and the same model with
its actions disabled as an extra arm (``ablation = "actions_off"``), so accuracy with and without the
triggered perception sits side by side in ``eval_scores``.

An adapter is a VPT one when its tokenizer holds the region or re-encoding control tokens (the
adapter folder's vocabulary: :func:`is_vpt_processor`). The prompt is the one plain generation uses
(:func:`evaluation.prompts.build_question` / ``build_prompt``); the image is the ORIGINAL image, not
the 336 x 336 resize of the Aurora protocol: VPT crops the original (Sec. 3.1), and the actions'
crop boxes are in its pixels. Output rows have the shape of :func:`evaluation.generate.generate_predictions`'
plus ``n_actions``, ``actions`` (the ``eval_predictions.actions`` structs) and the first region's
``region_iou`` / ``region_iogt`` against the row's ``gt_box``.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, replace
from typing import Any, Callable, Sequence

from PIL import Image
from tqdm.auto import tqdm

from evaluation.generate import GenerationSettings, _output
from evaluation.prompts import build_prompt, build_question
from evaluation.region_scores import region_overlap_fields
from evaluation.vpt_actions import ActionSettings, generate_with_actions
from perception_tokens import regions
from perception_tokens.images import BadImageError, decode_rgb

_VPT_TOKEN_RE = re.compile(r"<REGION_[A-Z]+(?:_\d+)?>")  # start, end and cell tokens, a closed region or not
ACTIONS_OFF = "actions_off"  # the ablation name of the "without" arm
_TEXT_ONLY = ("normal", "none", ACTIONS_OFF)  # oracle / random put depth tokens in the answer: no VPT meaning


def is_vpt_processor(processor: Any) -> bool:
    """Whether the model's vocabulary holds VPT's region or re-encoding control tokens."""
    vocab = processor.tokenizer.get_vocab()
    return regions.REGION_START in vocab or regions.REENCODE_CONTROL in vocab


def vpt_runs(runs: Sequence[tuple[str, str]], log: Callable[[str], None] = print) -> list[tuple[str, str]]:
    """The (mode, ablation) arms a VPT adapter runs: each configured arm (depth-token ablations left out,
    said in the log) and, after each ``normal`` arm, the same mode with actions off."""
    out: list[tuple[str, str]] = []
    for mode, ablation in runs:
        if ablation not in _TEXT_ONLY:
            log(f"VPT adapter: ablation {ablation!r} feeds depth tokens, which a VPT vocabulary lacks; not run")
            continue
        for arm in ((mode, ablation), (mode, ACTIONS_OFF)) if ablation == "normal" else ((mode, ablation),):
            if arm not in out:
                out.append(arm)
    return out


def action_struct(action: dict) -> dict[str, Any]:
    """One action of the loop (:class:`training.vpt.sequence.Inserter`) as an ``eval_predictions.actions`` struct."""
    cells = action.get("cells") or [None] * 4
    box = action.get("box_px") or [None] * 4
    return {"kind": action["kind"], "grid": action.get("grid"),
            "x_min": cells[0], "y_min": cells[1], "x_max": cells[2], "y_max": cells[3],
            "crop_left": box[0], "crop_top": box[1], "crop_right": box[2], "crop_bottom": box[3],
            "n_embeddings": action.get("n_embeddings"), "answer_position": action.get("answer_position")}


def strip_vpt_tokens(text: str) -> str:
    """The answer without its regions and control tokens (what the answer parser reads)."""
    text = _VPT_TOKEN_RE.sub(" ", text).replace(regions.REENCODE_CONTROL, " ")
    return " ".join(text.split())


def generate_vpt_predictions(model: Any, processor: Any, rows: Sequence[dict], settings: GenerationSettings, *,
                             reencoder=None, max_actions: int = ActionSettings.max_actions,
                             logits_processors: Sequence = (), progress: bool = True) -> list[dict]:
    """One output row per input row, in order. ``settings.ablation``: ``normal`` (actions on),
    ``actions_off`` (the same prompt, perception tokens banned), ``none`` (direct prompt, actions off)."""
    if settings.ablation not in _TEXT_ONLY:
        raise ValueError(f"a VPT adapter runs ablations {_TEXT_ONLY}, not {settings.ablation!r}")
    mode = "direct" if settings.ablation == "none" else settings.mode
    actions = ActionSettings(max_new_tokens=settings.max_new_tokens, max_actions=max_actions,
                             actions=settings.ablation == "normal")
    meta = {f"gen_{k}": v for k, v in asdict(settings).items()}
    tokenizer = processor.tokenizer
    prepared = []
    for row in rows:
        question, mode_used = build_question(row, mode, settings.count_cot_instruction, settings.prompts)
        prepared.append({"row": row, "prompt": build_prompt(processor, question, settings.conversation), "prefix": "",
                         "separator": "", "mode_used": mode_used, "error": None, "frame": None})
    results: list[dict | None] = [None] * len(prepared)
    for start in tqdm(range(0, len(prepared), settings.batch_size), desc="generate (VPT)", disable=not progress):
        batch, images = [], []
        for i in range(start, min(start + settings.batch_size, len(prepared))):
            try:
                images.append(Image.fromarray(decode_rgb(prepared[i]["row"]["image_bytes"])))
                batch.append(i)
            except BadImageError as exc:
                prepared[i]["error"] = f"image does not decode: {exc}"
                results[i] = _vpt_output(prepared[i], tokenizer, None, float("nan"), float("nan"), meta)
        if not batch:
            continue
        t0 = time.perf_counter()
        outs = generate_with_actions(model, processor, [(prepared[i]["prompt"], im) for i, im in zip(batch, images)],
                                     actions, reencoder=reencoder, logits_processors=logits_processors)
        elapsed = time.perf_counter() - t0
        for i, out in zip(batch, outs):
            results[i] = _vpt_output(prepared[i], tokenizer, out, elapsed / len(batch), elapsed, meta)
    return results


def _vpt_output(p: dict, tokenizer, out: dict | None, latency: float, batch_latency: float, meta: dict) -> dict:
    if out is None:  # not run: scored as not run, no actions
        return {**_output(p, "", 0, latency, batch_latency, meta), "n_actions": None, "actions": None,
                "region_iou": None, "region_iogt": None}
    text = tokenizer.decode(out["answer_ids"], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    for special in (tokenizer.eos_token, tokenizer.pad_token):
        if special:
            text = text.replace(special, "")
    row = _output(p, strip_vpt_tokens(text), len(out["answer_ids"]), latency, batch_latency, meta)
    actions = [action_struct(a) for a in out["actions"]]
    # the model's own text (regions included) is what raw_output keeps; pred was parsed without them
    return {**row, "raw_output": text, "generated_text": text, "n_actions": len(actions), "actions": actions,
            **region_overlap_fields(actions, p["row"].get("gt_box"))}


def evaluate_vpt(model: Any, processor: Any, rows: Sequence[dict], runs: Sequence[tuple[str, str]],
                 base_settings: GenerationSettings, *, reencoder=None, max_actions: int = ActionSettings.max_actions,
                 logits_processors: Sequence = (), log: Callable[[str], None] = print) -> list[tuple[GenerationSettings, dict]]:
    """``(settings, output row)`` for every arm of :func:`vpt_runs` over every row."""
    out = []
    for mode, ablation in vpt_runs(runs, log):
        settings = replace(base_settings, mode=mode, ablation=ablation)
        log(f"evaluating {len(rows)} questions with VPT actions {'off' if ablation != 'normal' else 'on'}: "
            f"mode={mode} ablation={ablation} max_actions={max_actions} re-encoder={'yes' if reencoder else 'none'}")
        for p in generate_vpt_predictions(model, processor, rows, settings, reencoder=reencoder, max_actions=max_actions,
                                          logits_processors=logits_processors):
            out.append((settings, p))
    return out
