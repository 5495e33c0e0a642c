"""The multiple-choice record of Hugging Face benchmark releases (BLINK, CV-Bench): question,
choices, gold letter, image struct and prompt, checked the same way for every such release."""

from __future__ import annotations

from pathlib import Path

from evaluation.benchmarks.records import format_choices_prompt, gold_letter, image_from_struct, letters


def take_idx(rec: dict, fallback: str, seen: set[str]) -> tuple[str, bool]:
    """The record's ``idx`` as a question id (``fallback`` when it has none) and whether that id
    was already ``seen`` (then the record is a duplicate); the id joins ``seen``."""
    qid = rec.get("idx")
    qid = str(qid).strip() if qid is not None and str(qid).strip() else fallback
    duplicate = qid in seen
    seen.add(qid)
    return qid, duplicate


def choice_fields(rec: dict, folder: Path, image_column: str, *, numeric_choices: bool = False) -> dict | str:
    """The row fields of one multiple-choice record, or the reason it cannot be used.

    ``numeric_choices``: options may be stored as numbers (CV-Bench's Count) and become
    strings; otherwise every option must already be a string. ``folder`` is where an image
    struct holding only a ``path`` is read from (never outside it).
    """
    question, choices = rec.get("question"), rec.get("choices")
    if not isinstance(question, str) or not question.strip():
        return "question without text"
    if not isinstance(choices, list) or not 2 <= len(choices) <= 26:
        return f"choices {choices!r} are not a list of 2+ {'options' if numeric_choices else 'strings'}"
    if numeric_choices:
        choices = [str(c) for c in choices]
    elif not all(isinstance(c, str) for c in choices):
        return f"choices {choices!r} are not a list of 2+ strings"
    valid = letters(len(choices))
    if rec.get("answer") is None:
        return "question without answer"
    gold = gold_letter(rec.get("answer"), valid)
    if gold is None:
        return f"answer {rec.get('answer')!r} is not one of {valid}"
    image = image_from_struct(rec.get(image_column), folder, image_column)
    if isinstance(image, str):
        return image
    prompt = rec.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        prompt = format_choices_prompt(question, choices)
    return {"question": question, "prompt": prompt, "choices": list(choices), "valid_letters": valid, "gold": gold,
            "image_bytes": image, "answer_type": "letter"}
