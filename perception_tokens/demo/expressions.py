"""Referring expressions for demo objects ("red ball on the left", "the nearer cup").

Candidates are built from colour, category noun, horizontal position and depth order,
and a candidate is only used when it picks out exactly one object in the scene, as a
RefCOCO annotator's expression would. If nothing is unique (two identical objects side
by side) the most specific description is used anyway.
"""

from __future__ import annotations

import numpy as np

from .catalog import SCENE_CATEGORY_INFO
from .scenes import SceneObject

__all__ = ["referring_expressions", "referring_expressions_plus", "referring_expressions_g", "tokenize"]

_POSITION_PHRASE = {"left": "on the left", "right": "on the right", "middle": "in the middle"}


def tokenize(sentence: str) -> list[str]:
    """RefCOCO-style tokens: lower case, split on whitespace, punctuation dropped."""
    cleaned = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in sentence.lower())
    return cleaned.split()


def _candidates(target: SceneObject, objects: list[SceneObject], noun: str) -> list[str]:
    same_cat = [o for o in objects if o.category == target.category]
    same_cat_color = [o for o in same_cat if o.color_name == target.color_name]
    same_cat_pos = [o for o in same_cat if o.position == target.position]
    same_all = [o for o in same_cat_color if o.position == target.position]
    pos = _POSITION_PHRASE[target.position]
    out: list[str] = []
    if len(same_cat) == 1:
        out += [f"the {noun}", f"{target.color_name} {noun}"]
    if len(same_cat_color) == 1:
        out += [f"{target.color_name} {noun}", f"the {target.color_name} {noun}"]
    if len(same_cat_pos) == 1:
        out += [f"{noun} {pos}", f"{target.position} {noun}" if target.position != "middle" else f"middle {noun}"]
    if len(same_all) == 1:
        out += [f"{target.color_name} {noun} {pos}"]
    if len(same_cat) >= 2:
        depths = sorted(o.mean_depth for o in same_cat)
        if target.mean_depth == depths[0]:
            out += [f"closest {noun}", f"the {noun} nearest to the camera"]
        elif target.mean_depth == depths[-1]:
            out += [f"farthest {noun}", f"the {noun} in the back"]
    return _unique(out or [f"{target.color_name} {noun} {pos}"])


def _appearance_candidates(target: SceneObject, objects: list[SceneObject], noun: str) -> list[str]:
    """RefCOCO+ style: appearance only, no words of location in the image (the RefCOCO+
    annotators were barred from "left", "right", ...); depth order is kept as an attribute."""
    same_cat = [o for o in objects if o.category == target.category]
    same_cat_color = [o for o in same_cat if o.color_name == target.color_name]
    out: list[str] = []
    if len(same_cat) == 1:
        out += [f"{noun}", f"{target.color_name} {noun}"]
    if len(same_cat_color) == 1:
        out += [f"{target.color_name} {noun}", f"the {target.color_name} one"]
    if len(same_cat) >= 2:
        depths = sorted(o.mean_depth for o in same_cat)
        nearest, farthest = target.mean_depth == depths[0], target.mean_depth == depths[-1]
        out += ([f"bigger {noun} in front", f"{target.color_name} {noun} in front"] if nearest else
                [f"small {noun} in the back", f"{target.color_name} {noun} far away"] if farthest else [])
    return _unique(out or [f"{target.color_name} {noun}"])


def _unique(candidates: list[str]) -> list[str]:
    """Keep order, drop repeats."""
    seen: set[str] = set()
    return [c for c in candidates if not (c in seen or seen.add(c))]


def _long_candidates(target: SceneObject, objects: list[SceneObject], noun: str) -> list[str]:
    """RefCOCOg style: one full sentence naming colour, place and depth (longer, non-interactive
    annotation; the UMD sentences average about 8 words)."""
    pos = _POSITION_PHRASE[target.position]
    others = [o for o in objects if o is not target]
    nearer = sum(o.mean_depth < target.mean_depth for o in others)
    depth_phrase = ("closest to the camera" if nearer == 0 else
                    "farthest from the camera" if nearer == len(others) else "behind another object")
    return [f"a {target.color_name} {noun} {pos} of the picture that is {depth_phrase}",
            f"the {noun} which is {target.color_name} and sits {pos}",
            f"a {target.color_name} {noun} standing on the floor {pos}"]


def _pick(cands: list[str], rng: np.random.Generator, max_sentences: int) -> list[str]:
    k = int(rng.integers(1, min(max_sentences, len(cands)) + 1))
    picks = [cands[i] for i in sorted(rng.choice(len(cands), size=k, replace=False).tolist())]
    raws = []
    for s in picks:
        style = int(rng.integers(3))
        if style == 1:
            s = s[0].upper() + s[1:]
        elif style == 2:
            s = s + "."
        raws.append(s)
    return raws


def _noun(target: SceneObject, rng: np.random.Generator) -> str:
    words = SCENE_CATEGORY_INFO[target.category].words
    return words[int(rng.integers(len(words)))]


def referring_expressions(
    target: SceneObject, objects: list[SceneObject], rng: np.random.Generator, max_sentences: int = 3
) -> list[str]:
    """1..max_sentences raw RefCOCO expressions (as typed: some capitalised, some with a full stop)."""
    noun = _noun(target, rng)
    return _pick(_candidates(target, objects, noun), rng, max_sentences)


def referring_expressions_plus(
    target: SceneObject, objects: list[SceneObject], rng: np.random.Generator, max_sentences: int = 3
) -> list[str]:
    """1..max_sentences RefCOCO+ expressions: appearance, no location words."""
    noun = _noun(target, rng)
    return _pick(_appearance_candidates(target, objects, noun), rng, max_sentences)


def referring_expressions_g(
    target: SceneObject, objects: list[SceneObject], rng: np.random.Generator, max_sentences: int = 2
) -> list[str]:
    """1..max_sentences RefCOCOg (UMD) expressions: whole descriptive sentences."""
    noun = _noun(target, rng)
    return _pick(_long_candidates(target, objects, noun), rng, max_sentences)
