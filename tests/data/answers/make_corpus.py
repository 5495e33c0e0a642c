"""Writes corpus.jsonl: free-form answers in the styles real models use, each with the
extraction a careful human reader gives (``null`` = no committed answer: refusal, hedge,
two options asserted, negation). Run: python tests/data/answers/make_corpus.py

Every phrasing below was written by hand; letters and option sets are varied so each rule is
exercised with the answer at different places, not only with "A".
"""

from __future__ import annotations

import json
from pathlib import Path

LETTERS = "ABCDE"

# (template, expected) — {x} the chosen point, {y} another, {z} a third; expected "x" / None
POINT_STYLES: dict[str, list[tuple[str, str | None]]] = {
    "bare letter": [("{x}", "x"), ("({x})", "x"), ("{x}.", "x"), ("{x})", "x"), (" ({x}) ", "x"), ("{x}\n", "x")],
    "letter first, then why": [
        ("({x}) Point {x} is closer to the camera.", "x"),
        ("{x}. The circle labelled {x} sits on the nearest object.", "x"),
        ("({x}) because it is on the foreground table.", "x"),
        ("{x}: it is lower in the frame, so it is nearer.", "x"),
    ],
    "explicit answer phrase": [
        ("The answer is {x}.", "x"), ("The answer is ({x}).", "x"), ("Answer: {x}", "x"), ("Answer: ({x})", "x"),
        ("Final answer: {x}", "x"), ("The correct answer is ({x}).", "x"), ("The correct option is {x}.", "x"),
        ("I choose {x}.", "x"), ("My answer is point {x}.", "x"), ("I would go with ({x}).", "x"),
        ("So the answer would be {x}.", "x"),
    ],
    "chain of thought ending in an answer": [
        ("Point {y} is on the back wall, far from the viewer. Point {x} lies on the sofa in the foreground. "
         "Therefore, the answer is ({x}).", "x"),
        ("Let me think step by step. The floor recedes toward the top of the image, and point {x} is lowest in the frame. "
         "Point {y} is higher up. Answer: {x}", "x"),
        ("First, locate the points: {y} is on the distant building and {x} is on the car parked in front. "
         "Objects in the foreground are closer, so the final answer is {x}.", "x"),
        ("Looking at the depth cues (occlusion, size, perspective), point {y} seems far away. "
         "Point {x} is on the nearest object. The answer is ({x}).", "x"),
    ],
    "sentence naming the closer point": [
        ("Point {x}, which is circled on the dome of the building, appears to be closer to the camera than point {y}.", "x"),
        ("Based on the perspective, point {x} appears closer.", "x"),
        ("Point {x} is closer to the camera than point {y}.", "x"),
        ("Point {x} appears to be closer to the camera.", "x"),
        ("From the image, it seems that point {x} is nearer to the viewer.", "x"),
        ("Point {x}, located on the chair in the foreground, is closer to the camera.", "x"),
        ("Of the two marked points, {x} is closer.", "x"),
        ("Between points {x} and {y}, point {x} looks closer to the camera.", "x"),
        ("The point closer to the camera is {x}.", "x"),
        ("The closer point is point {x}.", "x"),
        ("Judging by the shadows and the perspective, the point nearer to the camera is point {x}.", "x"),
        ("Point {y} is on the far wall, while point {x} is closer to the camera.", "x"),
        ("Point {x} is the one closest to the camera.", "x"),
    ],
    "sentence naming the closest point": [
        ("The point closest to the camera is {x}.", "x"),
        ("Point {x} is the closest to the camera.", "x"),
        ("Among the circled points, {x} is the closest.", "x"),
        ("The closest point to the camera appears to be point {x}.", "x"),
        ("Point {x} is nearest to the viewer.", "x"),
        ("Point {y} is closer than point {z}, but point {x} is the closest of all.", "x"),
        ("Of all the labelled points, point {x}, on the table edge, seems to be the nearest.", "x"),
        ("Closest: {x}", "x"),
    ],
    "claim after a clause or a preamble": [
        ("Point {x}, which is closer to the bottom of the image and appears to be in the field, is closer to the camera.", "x"),
        ("Based on the image you provided, point {x} is closer to the camera.", "x"),
        ("Based on the image you provided, {x} is closer to the camera.", "x"),
        ("Point {x}, which sits on the grass in the lower part of the image, is the one closer to the camera.", "x"),
        ("In the image provided, point {x}, which is on the wall, is closer to the camera than point {y}, which is on the floor.", "x"),
        ("Looking at the image, I would say that point {x} is closer to the camera.", "x"),
        ("Upon analyzing the image, it appears that point {x} is closer to the camera than point {y}.", "x"),
        ("Based on the visual cues in the image, including perspective and the size of nearby objects, point {x} is closer to the camera.", "x"),
        ("Point {x}, which is closer to the bottom of the image, is the closest to the camera.", "x"),
    ],
    "a comparative that is not the claim": [
        ("It is hard to say whether {x} or {y} is closer.", None),
        ("Point {x}, which is closer to the bottom of the image, is farther from the camera.", None),
        ("Point {x}, which sits on the table that is closer to the window, is farther away.", None),
        ("Point {x}, which is closer to the horizon, may or may not be near the camera.", None),
        ("Point {x} may be closer to the camera, but it is hard to tell.", None),
        ("Based on the image you provided, it is unclear whether point {x} is closer to the camera.", None),
        ("Based on the image you provided, I cannot tell which point is closer.", None),
    ],
    "refusal": [
        ("I'm sorry, but I cannot determine the depth of points from this image.", None),
        ("It is impossible to tell which point is closer without depth information.", None),
        ("I cannot determine which of points {x} and {y} is closer to the camera.", None),
        ("I don't know.", None),
        ("Sorry, I can't help with that.", None),
        ("The image does not provide enough information to answer the question.", None),
        ("It is difficult to determine whether point {x} is closer.", None),
        ("Unable to judge the depth of point {x} from a single image.", None),
    ],
    "hedge between options": [
        ("It could be {x} or {y}.", None),
        ("Either point {x} or point {y} is closest.", None),
        ("Points {x} and {y} appear to be at similar distances from the camera.", None),
        ("It is either {x} or {y}, hard to say.", None),
        ("{x} or {y}", None),
        ("The answer is {x} or {y}.", None),
        ("Points {x} and {y} are both closer than point {z}.", None),
        ("I think the closest is {x} or {y}.", None),
    ],
    "asserts two different options": [
        ("Point {x} is closer. Point {y} is closer.", None),
        ("Point {x} looks closer at first, but point {y} is actually closer.", None),
        ("Point {x} is the closest. On second thought, point {y} is the closest.", None),
        ("({x}) Point {y} is closer to the camera.", None),
    ],
    "negation": [
        ("Point {x} is not closer than point {y}.", None),
        ("The answer is not {x}.", None),
        ("Not {x}.", None),
        ("Point {x} isn't the closest one.", None),
        ("Neither {x} nor {y} is closer.", None),
    ],
    "mentions a point without answering": [
        ("Point {x} is circled in red on the left side of the image.", None),
        ("Which point is closer to the camera, {x} or {y}?", None),
        ("If point {x} were closer, its circle would look larger.", None),
        ("A point is closer to the camera.", None),
        ("Point {x} is farther away than point {y}.", None),
        ("I think it is {y}, because {x} is farther.", None),
    ],
}

# CV-Bench style: the options are object names
OBJECT_STYLES: list[tuple[str, str | None]] = [
    ("The {a} is closer to the camera.", "a"),
    ("The {a} (highlighted by a red box) appears to be closer to the camera than the {b}.", "a"),
    ("{A}", "a"),
    ("The answer is the {a}.", "a"),
    ("Based on the image, the {a} is closer.", "a"),
    ("The object closer to the camera is the {a}.", "a"),
    ("The {b} is farther away than the {a}.", None),
    ("It could be the {a} or the {b}.", None),
    ("The {a} is not closer than the {b}.", None),
    ("Both the {a} and the {b} are at the same distance.", None),
]
OBJECT_PAIRS = [("lamp", "chair"), ("sofa", "table"), ("traffic light", "bus"), ("bookshelf", "bed"), ("potted plant", "television")]

COUNT_STYLES: list[tuple[str, int | None]] = [
    ("{n}", 1), ("{w}", 1), ("{W}.", 1), ("There are {n} {things} in the image.", 1), ("There are {w} {things}.", 1),
    ("I count {n} {things}.", 1), ("The answer is {n}.", 1), ("Answer: {n}", 1), ("Total: {n}", 1),
    ("Looking carefully, I can see {w} {things} on the left and none on the right. There are {n} {things} in total.", 1),
    ("There might be {n} or {m} {things}.", None), ("{n} or {m}", None), ("I can't count them reliably.", None),
    ("Sorry, I cannot determine the number of {things}.", None),
]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
THINGS = ["cups", "people", "cars", "chairs", "birds", "books"]


def point_rows() -> list[dict]:
    rows = []
    for style, templates in POINT_STYLES.items():
        for t_i, (template, expected) in enumerate(templates):
            for k in (2, 3, 5):
                valid = list(LETTERS[:k])
                x = valid[(t_i + k) % k]
                y = valid[(t_i + k + 1) % k]
                z = valid[(t_i + k + 2) % k] if k > 2 else None
                if "{z}" in template and (z is None or z in (x, y)):
                    continue
                text = template.format(x=x, y=y, z=z)
                rows.append({"style": style, "text": text, "valid_letters": valid, "choices": None, "answer_type": "letter",
                             "expected": x if expected == "x" else None})
    return rows


def object_rows() -> list[dict]:
    rows = []
    for i, (template, expected) in enumerate(OBJECT_STYLES):
        for j, (a, b) in enumerate(OBJECT_PAIRS):
            first_is_a = (i + j) % 2 == 0
            choices = [a, b] if first_is_a else [b, a]
            text = template.format(a=a, b=b, A=a.capitalize())
            rows.append({"style": "option text (CV-Bench)", "text": text, "valid_letters": ["A", "B"], "choices": choices,
                         "answer_type": "letter", "expected": ("A" if first_is_a else "B") if expected == "a" else None})
    return rows


def count_rows() -> list[dict]:
    rows = []
    for i, (template, expected) in enumerate(COUNT_STYLES):
        for n in (0, 2, 3, 7) if "{w}" not in template and "{W}" not in template else (2, 4, 9):
            things = THINGS[(i + n) % len(THINGS)]
            text = template.format(n=n, m=n + 1, w=NUMBER_WORDS[n], W=NUMBER_WORDS[n].capitalize(), things=things)
            rows.append({"style": "count", "text": text, "valid_letters": [], "choices": None, "answer_type": "number",
                         "expected": str(n) if expected is not None else None})
    return rows


# Shapes that take each branch of the peers' matching rules (lmms-eval 0.7.2 / 0.7.3, VLMEvalKit
# can_infer; see evaluation/compat*.py), for benchmarks/compat_differential.py. No labels: there
# the peers' own functions are the reference.
COMPAT_SHAPES: list[str] = [
    "B", "b", "(b)", "b.", " (B) ", "B)\n", "B\nBecause point B is on the table.", "(A)\n(B)", "AB", "A B", "a",
    "Answer: B", "answer: b", "Answer - C", "answer:(D)", "ANSWER IS E", "Answers: A", "The answer is a point on the table.",
    "The answer is (C).", "The correct answer is **B**. Here's why: it is lower in the frame.", "The answer is **b**",
    "My answer is B, not A.", "The answer isn't clear; maybe B.", "Point A: closer. Final answer: B",
    "I pick (B) over (A).", "I pick (b).", "(a) is closer.", "(A) or (B)", "Option (B) is correct.",
    "Based on the image you provided, point A is closer to the camera.", "Based on depth cues, A.",
    "Point B, which is closer to the bottom of the image and appears to be in the field, is closer to the camera.",
    "Cannot determine the answer", "Sorry, I can't help with images of people yet. A",
    "Failed to obtain answer via API.", "Failed to obtain answer via API. B", "Z", "Z. None of them.",
    "I am not sure. Z", "A is closer than B, so the answer is A", "C) the lamp", "the lamp", "the chair",
    "The lamp is closer.", "Between the chair and the lamp, the chair.", "İİİ B", "A.\n\nExplanation: point B is farther.",
    "  \n  B\n", "The answer is D", "Answer: E", "The answer is C because point A is farther.", "",
]
COMPAT_OPTION_SETS: list[tuple[list[str], list[str] | None]] = [
    (["A", "B"], None), (["A", "B", "C"], None), (["A", "B", "C", "D", "E"], None),
    (["A", "B"], ["A", "B"]), (["A", "B"], ["lamp", "chair"]), (["A", "B", "C", "D"], ["(A)", "(B)", "(C)", "(D)"]),
]


def compat_rows() -> list[dict]:
    return [{"style": "compat shape", "text": text, "valid_letters": letters, "choices": choices, "answer_type": "letter"}
            for text in COMPAT_SHAPES for letters, choices in COMPAT_OPTION_SETS]


def main() -> None:
    rows = point_rows() + object_rows() + count_rows()
    out = Path(__file__).with_name("corpus.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} answers -> {out}")
    shapes = compat_rows()
    out = Path(__file__).with_name("compat_shapes.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in shapes), encoding="utf-8")
    print(f"{len(shapes)} answer shapes for the peer rules -> {out}")


if __name__ == "__main__":
    main()
