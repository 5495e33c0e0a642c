"""The demo's zoom set (:mod:`evaluation.benchmarks.zoom`): a large image of big shapes with one
tiny label in a corner (a letter or a digit, ~8 px tall on a 512 x 384 image), asked as a
multiple-choice question with the label's box as the ground truth. At the size a vision encoder
sees the whole image the character is a few pixels; the crop of its grid cells shows it large."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from evaluation.benchmarks import zoom
from evaluation.benchmarks.demo_formats import write_jsonl
from evaluation.benchmarks.records import LETTERS
from perception_tokens.images import encode_png
from perception_tokens.paths import atomic_write_bytes

IMAGE_SIZE = (512, 384)  # width, height
LABEL_SIZE = (14, 16)  # the label patch, width x height pixels
MARGIN = 6
N_CHOICES = 4
ALPHABETS = {"letter": "JKLMNPRSTUVWXYZ", "digit": "0123456789"}  # letters past the option letters (A-D): "(B) K", never "(B) A"
QUESTIONS = {"letter": "Which letter is written on the small label in a corner of the image?",
             "digit": "Which digit is written on the small label in a corner of the image?"}
_SEED_OFFSET = 24_000  # its own random stream: the other demo sets' files do not move


def write_demo_zoom(root: str | Path, n_questions: int, seed: int) -> dict[tuple[str, str, str], str]:
    """Write ``n_questions`` questions (letters and digits alternating) under ``root``; returns the
    answer key ``{(benchmark, subset, question_id): gold letter}``."""
    root = Path(root)
    rng = np.random.default_rng(seed + _SEED_OFFSET)
    records, answers = [], {}
    for i in range(n_questions):
        category = zoom.SUBSETS[i % len(zoom.SUBSETS)]
        qid = f"zoom{i:04d}"
        image, char, bbox = zoom_scene(rng, category)
        image_name = f"images/{qid}.png"
        atomic_write_bytes(root / image_name, encode_png(image), fsync=False)
        others = [c for c in ALPHABETS[category] if c != char]
        choices = [char, *rng.choice(others, size=N_CHOICES - 1, replace=False).tolist()]
        rng.shuffle(choices)
        gold = LETTERS[choices.index(char)]
        records.append({"question_id": qid, "category": category, "image": image_name, "question": QUESTIONS[category],
                        "choices": choices, "answer": gold, "bbox": bbox})
        answers[(zoom.BENCHMARK, category, qid)] = gold
    write_jsonl(root / zoom.QUESTIONS_FILE, records)
    return answers


def zoom_scene(rng: np.random.Generator, category: str) -> tuple[np.ndarray, str, list[int]]:
    """(RGB image, the character on the label, the label's box ``[x, y, w, h]``)."""
    width, height = IMAGE_SIZE
    ramp = np.linspace(60, 200, width, dtype=np.float32)
    image = np.stack([np.tile(ramp, (height, 1)), np.full((height, width), 120, np.float32),
                      np.tile(ramp[::-1], (height, 1))], axis=-1).astype(np.uint8)
    for _ in range(4):  # big distractors, kept off the corners
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(width // 4, 3 * width // 4)), int(rng.integers(height // 4, 3 * height // 4))
        cv2.circle(image, (cx, cy), int(rng.integers(30, 70)), color, thickness=-1)
    lw, lh = LABEL_SIZE
    corner = int(rng.integers(4))
    x = MARGIN if corner in (0, 2) else width - MARGIN - lw
    y = MARGIN if corner in (0, 1) else height - MARGIN - lh
    image[y:y + lh, x:x + lw] = 255
    char = str(rng.choice(list(ALPHABETS[category])))
    cv2.putText(image, char, (x + 2, y + lh - 3), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1, cv2.LINE_8)
    return image, char, [x, y, lw, lh]
