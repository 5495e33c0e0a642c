"""VPT's generation loop with actions (arXiv 2502.17425 Sec. 3; Fig. 2): batched greedy decoding that
pauses a row when it closes a region (crop the original image to the region, encode the crop, insert
it, go on) or writes ``<REENCODE_CONTROL>`` (DINOv2 + cross-attention projector keyed by the control
token's hidden state, insert, go on), at most ``max_actions`` actions per answer.

Each step is one forward over every unfinished row (left-padded, no KV cache: the inserted spans
change the sequence between steps, so every step re-embeds it; fine for short answers). Each image's
vision-tower output is computed once and kept; only the language model runs every step. Regions are
kept well-formed by :class:`~evaluation.region_constraint.RegionLogitsProcessor`'s rules; once a row
has used its actions, ``<REGION_START>`` and the control token are banned for it (the control token
also when no re-encoder is given). The sequences are
:class:`training.vpt.sequence.VptSequence`, the same that training teacher-forces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from evaluation.region_constraint import OUTSIDE, RegionLogitsProcessor
from training.vpt.sequence import Inserter, VptSequence, model_inputs, start_sequence


@dataclass(frozen=True)
class ActionSettings:
    max_new_tokens: int = 64
    max_actions: int = 4  # the paper does not bound them; one region per answer is its training data
    actions: bool = True  # False: the same model with the perception tokens banned (the "without" arm)


@torch.no_grad()
def generate_with_actions(model, processor, prompts: Sequence[tuple[str, object]], settings: ActionSettings = ActionSettings(),
                          *, reencoder=None, logits_processors: Sequence = ()) -> list[dict]:
    """``prompts``: ``(chat text with one image placeholder, PIL image)`` per row. Returns per row the
    answer text, the answer ids (no inserted spans), every action, and the final sequence.

    ``logits_processors`` run first, per row, on ``(ids [1, len], scores [1, vocab])``; the region
    constraint and the action bound run after them."""
    inserter = Inserter(model, processor, reencoder, max_actions=settings.max_actions if settings.actions else 0)
    tok = processor.tokenizer
    constraint = RegionLogitsProcessor(tok)
    trigger_ids = [inserter.region_start, inserter.control]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    sequences = [start_sequence(processor, text, image) for text, image in prompts]
    steps = 0
    while steps < settings.max_new_tokens:
        active = [s for s in sequences if not s.finished]
        if not active:
            break
        pending = any(s.pending_control for s in active)
        out = model(**model_inputs(model, active, pad, keep_features=True), output_hidden_states=pending,
                    logits_to_keep=1)
        logits = out.logits[:, -1].float()
        sampled = False
        for row, seq in enumerate(active):
            if seq.pending_control:  # the control token was the last input: its hidden state is here
                inserter.reencode(seq, out.hidden_states[-1][row, -1])
                continue
            scores = logits[row: row + 1]
            ids = torch.tensor([seq.ids], device=scores.device)
            for proc in logits_processors:
                scores = proc(ids, scores)
            keep = constraint.allowed(seq.answer, scores.shape[-1]).to(scores.device)
            if constraint.phase(seq.answer)[0] == OUTSIDE:
                if not inserter.actions_left(seq):
                    keep[trigger_ids] = False
                elif reencoder is None:
                    keep[inserter.control] = False  # nothing would answer the control token
            token = int(scores[0].masked_fill(~keep, torch.finfo(scores.dtype).min).argmax())
            sampled = True
            if token == eos:
                seq.finished = True
                continue
            inserter.append(seq, token)
        steps += sampled
    return [_result(tok, s) for s in sequences]


def _result(tokenizer, seq: VptSequence) -> dict:
    return {"answer": tokenizer.decode(seq.answer, skip_special_tokens=True), "answer_ids": list(seq.answer),
            "actions": list(seq.actions), "n_actions": len(seq.actions), "sequence": seq}

