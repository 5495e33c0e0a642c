"""The ``experiment`` section: the paper's comparison as named variants of one graph.

Each variant is a small override of the ``curriculum``, ``finetune`` and ``evaluation``
sections (the stages that run once per variant); the upstream stages (sources, depth,
VQ-VAE, tokens, benchmarks) are shared and cannot be overridden, so they are computed once.
A variant whose evaluation ``model`` is ``base`` evaluates the base checkpoint without an
adapter and has no curriculum or fine-tune of its own.

``paper_method`` names the row of the paper's tables a variant stands for
(``evaluation/published.py``); ``headline`` the (mode, ablation) of its evaluation that the
comparison table reports.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from pipeline_lib.settings_sections import _Section

# the sections a variant may override: the stages that run once per variant
VARIANT_SECTIONS = ("curriculum", "finetune", "evaluation")
# the two variants every other one is tested against (paired McNemar), when present
BASELINE_VARIANT = "base"
FULL_VARIANT = "aurora"
VARIANT_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")

Mode = Literal["direct", "cot"]
Ablation = Literal["none", "normal", "oracle", "random"]


class VariantSettings(_Section):
    curriculum: dict[str, Any] = {}
    finetune: dict[str, Any] = {}
    evaluation: dict[str, Any] = {}
    # the evaluation run reported for this variant; None: the variant's first evaluation.runs entry
    headline: tuple[Mode, Ablation] | None = None
    # the method of the paper's tables this variant reproduces (evaluation/published.py); None: no published row
    paper_method: str | None = None


class ExperimentSettings(_Section):
    """Variants by name, e.g. ``{base: {evaluation: {model: base}}, finetuned_llava: {curriculum: {tasks:
    [depth_direct]}}, aurora: {}}``. Variant names become asset-name suffixes (``curriculum__aurora``)."""

    variants: dict[str, VariantSettings] = Field(..., min_length=1)

    @field_validator("variants")
    @classmethod
    def _names_are_identifiers(cls, value: dict[str, VariantSettings]) -> dict[str, VariantSettings]:
        from evaluation.published import METHODS

        for name, variant in value.items():
            if not VARIANT_NAME.fullmatch(name) or "__" in name:
                raise ValueError(f"variant name {name!r} must be a lower-case identifier without '__' (it names assets)")
            if variant.paper_method is not None and variant.paper_method not in METHODS:
                raise ValueError(f"variant {name}: paper_method {variant.paper_method!r} is not one of {list(METHODS)}")
        return value


def variant_asset_name(base: str, variant: str | None) -> str:
    """The name of a per-variant asset (``curriculum__aurora``); the plain name without an experiment."""
    return base if variant is None else f"{base}__{variant}"


def merged_sections(base: dict[str, Any], variant: VariantSettings) -> dict[str, Any]:
    """The settings dictionary of a variant: ``base`` (a dumped Settings) with the variant's section keys
    written over it, one level deep (a value given replaces the whole value, as in the config file)."""
    out = {k: v for k, v in base.items() if k != "experiment"}
    for section in VARIANT_SECTIONS:
        override = getattr(variant, section)
        if override:
            out[section] = {**out[section], **override}
    return out
