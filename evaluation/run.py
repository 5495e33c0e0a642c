"""One evaluation run: a model over benchmark rows in several modes/ablations -> prediction
rows and score rows, in the tables' shapes. Shared by the Dagster asset and ``ptok eval``."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

from evaluation.generate import GenerationSettings, generate_predictions, task_kind
from evaluation.region_scores import REGION_SCORE_FIELDS, region_scores_by
from evaluation.scoring import score
from evaluation.vpt_eval import ACTIONS_OFF, evaluate_vpt, is_vpt_processor

# (mode, ablation) pairs: direct answers, generated perception tokens, and two ablations
# that show whether the answer depends on the tokens (teacher tokens vs random tokens).
DEFAULT_RUNS: tuple[tuple[str, str], ...] = (("direct", "none"), ("cot", "normal"), ("cot", "oracle"), ("cot", "random"))

VPT_FIELDS = ("gt_box", "n_actions", "actions", "region_iou", "region_iogt")

OracleFn = Callable[[dict], "str | None"]  # benchmark row -> teacher depth token string


@dataclass
class EvalIdentity:
    model_id: str  # adapter id (sha256 prefix) or base checkpoint name
    model_kind: str  # "adapter" | "base"
    eval_run_id: str
    run_started_at: str


def new_identity(model_id: str, model_kind: str) -> EvalIdentity:
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return EvalIdentity(model_id, model_kind, uuid.uuid4().hex[:12], now)


def limit_per_subset(rows: Iterable[dict], limit: int | None) -> list[dict]:
    out, seen = [], {}
    for r in rows:
        key = (r["benchmark"], r["subset"])
        if limit is None or seen.get(key, 0) < limit:
            out.append(r)
            seen[key] = seen.get(key, 0) + 1
    return out


def prediction_row(p: dict, ident: EvalIdentity, settings: GenerationSettings) -> dict[str, Any]:
    known = {"benchmark", "subset", "question_id", "prompt_text", "raw_output", "pred", "gold", "correct", "answer_type",
             "depth_spans", "depth_spans_valid", "boxes", "n_new_tokens", "latency_s", "error", "image_file", "mode_used",
             "pred_mask", *VPT_FIELDS}
    extra = {k: v for k, v in p.items() if k not in known and not k.startswith("gen_") and k not in ("question", "prompt", "choices", "valid_letters")}
    return {
        "eval_run_id": ident.eval_run_id, "run_started_at": ident.run_started_at, "model_id": ident.model_id,
        "model_kind": ident.model_kind, "benchmark": p["benchmark"], "subset": p["subset"], "question_id": str(p["question_id"]),
        "mode": settings.mode, "ablation": settings.ablation, "constrained": settings.constrained,
        "prompt_text": p.get("prompt_text"), "raw_output": p.get("raw_output"), "pred": p.get("pred"), "gold": str(p["gold"]),
        "correct": bool(p.get("correct")), "answer_type": p.get("answer_type"),
        "valid_letters": list(p.get("valid_letters") or []),
        "depth_spans": list(p.get("depth_spans") or []), "depth_spans_valid": [bool(v) for v in p.get("depth_spans_valid") or []],
        "n_boxes": len(p.get("boxes") or []), "n_new_tokens": int(p.get("n_new_tokens") or 0),
        "latency_s": float(p.get("latency_s") or 0.0), "error": p.get("error"), "image_file": p.get("image_file"),
        "extra_json": json.dumps(extra, default=str), "pred_mask": p.get("pred_mask"),
        # VPT adapters' actions and region overlap (evaluation/vpt_eval.py); null for every other model
        **{k: p.get(k) for k in VPT_FIELDS},
    }


def evaluate(
    model: Any,
    processor: Any,
    rows: Sequence[dict],
    ident: EvalIdentity,
    *,
    runs: Sequence[tuple[str, str]] = DEFAULT_RUNS,
    base_settings: GenerationSettings = GenerationSettings(),
    oracle: OracleFn | None = None,
    log: Callable[[str], None] = print,
    segmentation_head: Any = None,
    reencoder: Any = None,
    logits_processors: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """Prediction rows for every (mode, ablation) in ``runs``; ablations other than
    normal/none run on relative-depth rows only (others would only be 'not run').

    ``segmentation_head`` (a Perceptio adapter's, ``training.backends.reload_segmentation_head``)
    makes the run Perceptio's (:mod:`evaluation.perceptio`): mask rows are answered in the
    ``normal`` ablation with a mask from the [SEG] state (:mod:`evaluation.segmentation_masks`).
    Without one, mask rows cannot be answered: an error naming them.

    A VPT adapter (its vocabulary holds the region / control tokens) answers through the generation
    loop with actions, and each ``normal`` arm gets an ``actions_off`` twin (:mod:`evaluation.vpt_eval`);
    ``reencoder`` is its DINOv2 + projector (None: the control token is never written).
    ``logits_processors`` run before the constraints (tests force tokens with them)."""
    masks = [r for r in rows if r.get("answer_type") == "mask"]
    if masks and segmentation_head is None:
        raise ValueError(f"{masks[0]['benchmark']}: its answers are masks and this model has no segmentation head "
                         "(only an adapter fine-tuned with finetune.segmentation.enabled can answer it)")
    if is_vpt_processor(processor):
        return [prediction_row(p, ident, settings) for settings, p in evaluate_vpt(
            model, processor, rows, runs, base_settings, reencoder=reencoder, logits_processors=logits_processors, log=log)]
    runs = [r for r in runs if r[1] != ACTIONS_OFF]  # only a VPT adapter has actions to turn off
    if segmentation_head is not None:
        base_settings = replace(base_settings, perceptio=True)
    if base_settings.numerics == "reference":
        model = reference_numerics(model)
    hook = None
    if segmentation_head is not None:
        from evaluation.segmentation_masks import SegMaskPredictor

        hook = SegMaskPredictor(model, segmentation_head, processor.tokenizer)  # reads the [SEG] states of the model as run
    if oracle is not None:
        rows = [{**r, "oracle_depth": oracle(r)} if task_kind(r) == "depth" else r for r in rows]
    out: list[dict[str, Any]] = []
    for mode, ablation in runs:
        if ablation == "normal":
            chosen = list(rows)
        elif ablation == "none":  # no perception tokens, so no [SEG] and no mask
            chosen = [r for r in rows if r.get("answer_type") != "mask"]
        else:
            chosen = [r for r in rows if task_kind(r) == "depth"]
        if not chosen:
            continue
        settings = replace(base_settings, mode=mode, ablation=ablation)
        log(f"evaluating {len(chosen)} questions: mode={mode} ablation={ablation} constrained={settings.constrained}")
        for p in generate_predictions(model, processor, chosen, settings, progress=True, batch_hook=hook,
                                      extra_logits_processors=logits_processors):
            out.append(prediction_row(p, ident, settings))
    return out


def reference_numerics(model: Any) -> Any:
    """The model as the reference evaluates it: LoRA merged into the weights (``merge_and_unload``,
    LLaVA ``model/builder.py:90,142``) and every tensor in float16 (``torch_dtype=torch.float16``,
    builder.py:42,144; images ``.half()``, ``eval/model_vqa.py:67``)."""
    import torch

    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model.to(torch.float16).eval()


SCORE_BY = ("eval_run_id", "run_started_at", "model_id", "model_kind", "mode", "ablation", "benchmark", "subset")


def score_rows(predictions: Sequence[dict]) -> list[dict[str, Any]]:
    """Scores per (eval run, model, mode, ablation, benchmark, subset) in the eval_scores shape:
    accuracy for letter / number answers, cIoU and gIoU for masks (:func:`mask_score_rows`)."""
    by = SCORE_BY
    text = [p for p in predictions if p.get("answer_type") != "mask"]
    regions = region_scores_by(text, by)  # VPT: actions per answer, IoU / IoGT of the first region
    empty = dict.fromkeys(REGION_SCORE_FIELDS)
    rows = []
    for s in score(text, by=by) if text else []:
        rows.append({**{k: s.get(k) for k in (*by, "n", "n_not_run", "n_correct", "n_unparsed", "accuracy_pct", "ci_low_pct", "ci_high_pct",
                                              "chance_pct", "majority_pct", "paper_llava15_13b_pct", "paper_aurora_pct")},
                     **regions.get(tuple(str(s.get(k)) for k in by), empty)})  # CV-Bench's "official" row: no own group
    return rows + mask_score_rows([p for p in predictions if p.get("answer_type") == "mask"])


def mask_score_rows(predictions: Sequence[dict]) -> list[dict[str, Any]]:
    """cIoU / gIoU rows (with bootstrap intervals) per (run, model, mode, ablation, benchmark, subset) of
    mask predictions. Rows with an error are ``n_not_run``; a row without a mask (no [SEG]) scores
    IoU 0 and is counted in ``n_unparsed``. The accuracy columns stay null (NaN): a mask is not right or wrong."""
    from evaluation.segmentation_metrics import segmentation_scores

    groups: dict[tuple, list[dict]] = {}
    for p in predictions:
        groups.setdefault(tuple(p.get(k) for k in SCORE_BY), []).append(p)
    out = []
    for key in sorted(groups, key=lambda k: tuple(str(v) for v in k)):
        group = groups[key]
        run = [p for p in group if not p.get("error")]
        nan = float("nan")
        row = {**dict(zip(SCORE_BY, key)), "n": len(run), "n_not_run": len(group) - len(run), "n_correct": None,
               "n_unparsed": sum(p.get("pred_mask") is None or p.get("pred") is None for p in run),
               **{k: nan for k in ("accuracy_pct", "ci_low_pct", "ci_high_pct", "chance_pct", "majority_pct",
                                   "paper_llava15_13b_pct", "paper_aurora_pct", "ciou_pct", "ciou_ci_low_pct",
                                   "ciou_ci_high_pct", "giou_pct", "giou_ci_low_pct", "giou_ci_high_pct")}}
        if run:
            [s] = segmentation_scores(run)
            row.update({"ciou_pct": s["ciou"], "ciou_ci_low_pct": s["ciou_ci_low"], "ciou_ci_high_pct": s["ciou_ci_high"],
                        "giou_pct": s["giou"], "giou_ci_low_pct": s["giou_ci_low"], "giou_ci_high_pct": s["giou_ci_high"]})
        out.append(row)
    return out


def load_eval_model(adapter_dir: str | None, base_checkpoint: str | None, family: str | None = None) -> tuple[Any, Any, str]:
    """``(model, processor, model_kind)`` in eval mode: a fine-tuned adapter (its recorded family), or a
    base checkpoint ("tiny", a local dir or hub id) of ``family`` as released, without perception tokens."""
    from training.backends import load_base, reload_adapter

    from training.llava.aurora_checkpoint import is_aurora_checkpoint, load_aurora_checkpoint

    if adapter_dir is not None and is_aurora_checkpoint(adapter_dir):
        # Aurora's LoRA folder (non_lora_trainables.bin) on ``base_checkpoint``, as its builder.py loads it
        model, processor, _ = load_aurora_checkpoint(adapter_dir, base_checkpoint or "tiny")
        kind = "adapter"
    elif adapter_dir is not None:
        model, processor = reload_adapter(adapter_dir)
        kind = "adapter"
    else:
        model, processor = load_base(base_checkpoint, family)
        kind = "base"
    model.eval()
    return model, processor, kind


def load_segmentation_head(adapter_dir: str | None, model: Any) -> Any:
    """The [SEG] -> SAM2 head saved beside a Perceptio adapter, on the model's device, or None (a base model,
    an Aurora checkpoint, an adapter trained without it): whether the evaluation is Perceptio's is the adapter's
    own record (:func:`evaluation.perceptio.is_perceptio_adapter`), not a setting."""
    from evaluation.perceptio import is_perceptio_adapter

    if not is_perceptio_adapter(adapter_dir):
        return None
    from training.backends import reload_segmentation_head

    return reload_segmentation_head(adapter_dir, device=next(model.parameters()).device)


def generation_settings(evaluation_settings: Any, model_kind: str) -> GenerationSettings:
    """Generation settings from the config; a base checkpoint has no perception tokens, so
    there is nothing to constrain."""
    ev = evaluation_settings
    numerics = getattr(ev, "numerics", "project")
    return GenerationSettings(constrained=ev.constrained and model_kind == "adapter", max_new_tokens=ev.max_new_tokens,
                              batch_size=1 if numerics == "reference" else ev.batch_size, seed=ev.seed,
                              count_cot_instruction=getattr(ev, "count_cot_instruction", "project"),
                              conversation=getattr(ev, "conversation", "adapter"), prompts=getattr(ev, "prompts", "benchmark"),
                              constrain_boxes=getattr(ev, "constrain_boxes", True), numerics=numerics)
