"""How a Perceptio adapter is evaluated (arXiv 2603.18795 sec. 3.3): how it is recognised, how
each question is put to it, and where its answer starts.

A Perceptio adapter is one whose recorded fine-tune config (``finetune_config.json``) enabled
``finetune.segmentation``: its folder holds the [SEG] -> SAM2 head beside the LoRA weights
(``training.backends.reload_segmentation_head``). Nothing in the evaluation settings says so;
the adapter does. Such an adapter is asked as its curriculum taught it
(:mod:`perception_tokens.curriculum.perceptio_text`, the one place for Perceptio's strings):

- a referring-segmentation row (``answer_type == "mask"``): ``refer_question(expression)``; the
  answer is ``[SEG]``, the depth span, a description; the mask comes from the [SEG] state
  (:mod:`evaluation.segmentation_masks`);
- any other row (HardBLINK, BLINK, CV-Bench ...): the benchmark's question followed by
  ``with_perception_instruction``; the model writes its perception prefix first and the answer
  parser reads the text after it (:func:`answer_after_perception`).

The ``none`` ablation still asks the plain question (the answer without perception), and the
oracle / random ablations put the teacher's / random depth codes in Perceptio's own prefix
(``perception_prefix``: ``[SEG] <DEPTH_START>...<DEPTH_END>``) instead of Aurora's sentence.
"""

from __future__ import annotations

from pathlib import Path

from perception_tokens.curriculum.perceptio_text import refer_question, with_perception_instruction
from perception_tokens.token_kinds import SEG_TOKEN
from perception_tokens.vocab import DEPTH_END

MODE = "perceptio"  # eval_predictions.mode_used of a question asked Perceptio's way


def is_perceptio_adapter(adapter_dir: str | Path | None) -> bool:
    """True when the adapter's recorded fine-tune enabled the segmentation head (a clear error
    naming ``finetune_config.json`` when that record cannot be read)."""
    if adapter_dir is None:
        return False
    from training.finetune.adapter_folder import read_record
    from training.llava.aurora_checkpoint import is_aurora_checkpoint

    if is_aurora_checkpoint(adapter_dir):  # Aurora's own LoRA folders never carry a head
        return False
    _, config = read_record(adapter_dir)
    return bool(config.segmentation.enabled)


def perceptio_question(row: dict, benchmark_prompt: str) -> str:
    """The question a Perceptio adapter is asked for ``row`` (``benchmark_prompt``: the row's own prompt)."""
    if row.get("answer_type") == "mask":
        return refer_question(row["question"])
    return with_perception_instruction(benchmark_prompt)


def answer_after_perception(text: str) -> str:
    """The part of an answer after its perception prefix (after the first depth span's end, else after
    the first ``[SEG]``), which the answer parser reads; the whole text when there is no prefix."""
    end = text.find(DEPTH_END)
    if end >= 0:
        return text[end + len(DEPTH_END):]
    seg = text.find(SEG_TOKEN)
    return text[seg + len(SEG_TOKEN):] if seg >= 0 else text
