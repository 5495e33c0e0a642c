"""Aurora's curriculum data, exactly as its notebooks write it (the ``aurora`` style).

References (Aurora-perception):

* ``AiT/vae/create_depth_annealing_data.ipynb`` cell 2: the depth direct and CoT records of
  each marked image (direct first), cell 3: the epoch schedule.
* ``Bbox/create_bbox_annealing_data.ipynb`` cells 2-5: which LVIS image is used, for which
  category, with which question and answer; cell 7: the same epoch schedule.

Strings are the notebooks' own, character for character (including the CoT question's
"?.\\n " and its typographic apostrophe). The selection follows the cells statement by
statement, consuming a ``random.Random`` exactly as the notebooks consume the ``random``
module after ``random.seed(0)``, so the same inputs and seed give the same records.
Plain values in and out; no pipeline code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from perception_tokens.aurora_marks import AuroraMarks

# ---------------------------------------------------------------------------- depth strings (create_depth_annealing_data.ipynb cell 2)

DEPTH_QUESTION = ("Multiple points are circled on the image, labeled by letters beside each circle. "
                  "Which point is the closest to the camera?")
DEPTH_COT_SUFFIX = (
    "\nTo answer this question, let's think through it step by step, and we know the image is 336 x 336. "
    "First, what are the coordinates of points in the image? Second, what is the depth map for the image? "
    "Which point has a higher pixel value on the depth map? Remember, higher values indicate that the point "
    "is closer to the camera.")
DEPTH_COT_ANSWER_TAIL = ("The depth map for the image is {depth}. Since point {gt} has a higher pixel value on the "
                         "depth map, the answer is that point {gt} is closer to the camera.")

# ---------------------------------------------------------------------------- counting strings (create_bbox_annealing_data.ipynb cells 4-5)

COUNT_ATOMIC_QUESTIONS = (
    "Please perform bounding box prediction for each instance of {plural} in the image.",
    "Find instances of {plural}, return the x1 y1 x2 y2 coordinates of each instance.",
    "Find instances of {plural} in the image and return their bounding boxes.",
    "Return the bounding boxes of {plural}.",
    "Please locate all of the {plural} in this image.",
)
COUNT_ATOMIC_HEADER = "Here are the bounding boxes for the {plural}:\n"
COUNT_BOX_LINE = "Bounding box {i}: (<PIXEL_{x1}>,<PIXEL_{y1}>,<PIXEL_{x2}>,<PIXEL_{y2}>)\n"
COUNT_NONE = "There are no {plural} in the image."
COUNT_QUESTION = "How many {plural} are in the image?"
COUNT_COT_SUFFIX = (".\n To solve this, let\u2019s carefully analyze the image. First, identify the bounding boxes "
                    "associated with the {plural}. After that, count how many distinct bounding boxes correspond to {plural}.")
COUNT_COT_QUESTION = COUNT_QUESTION + COUNT_COT_SUFFIX
COUNT_COT_HEADER = "Based on the analysis, here are the bounding boxes for the {plural}:\n"
COUNT_COT_CONCLUSION = "Since there are {num} distinct bounding boxes and masks, we conclude there are {num} {plural}."
COUNT_COT_NONE = "There are no {plural} in the image. We conclude there are {num} {plural}."

MAX_COUNT = 15  # cells 4-5: num > 15 is skipped
MAX_PER_COUNT = 1000  # cells 4-5: count_dict[num] >= 1000 is skipped
TOTAL_LENGTH = {"depth": 20_000, "count": 5_000}  # cell 3 / cell 7: total_length
PERCENTS = (1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def depth_direct_qa(marks: AuroraMarks) -> tuple[str, str]:
    """Direct record of a marked image: (question, "(X)")."""
    return DEPTH_QUESTION, f"({marks.answer})"


def depth_cot_qa(marks: AuroraMarks, depth_tokens: str) -> tuple[str, str]:
    """CoT record: points in letter order A, B, ... as "(x = X y = Y)", then the depth tokens.

    The notebook walks ``letters[i]`` for i < n (alphabetical, not drawing order), joins with
    "," and turns the last "," into "."; the depth sentence follows without a space.
    """
    where = dict(zip(marks.letters, marks.coordinates))
    answer = "".join(f"Point {l} is located at (x = {where[l][0]} y = {where[l][1]})," for l in sorted(where))
    answer = answer[:-1] + "." + DEPTH_COT_ANSWER_TAIL.format(depth=depth_tokens, gt=marks.answer)
    return DEPTH_QUESTION + DEPTH_COT_SUFFIX, answer


# ---------------------------------------------------------------------------- counting selection


@dataclass(frozen=True)
class CountImage:
    """One LVIS image as the notebook sees it. ``annotations``: (annotation id, category id,
    (x1, y1, x2, y2) on the 336 grid, or ``None`` where the box has no usable grid box: it
    collapses on the grid or lies outside the image) in annotation-file order; ``neg_category_ids`` and
    ``not_exhaustive_category_ids`` as in the LVIS image record."""

    image_id: int
    file_name: str
    annotations: tuple[tuple[int, int, tuple[int, int, int, int] | None], ...]
    neg_category_ids: tuple[int, ...]
    not_exhaustive_category_ids: tuple[int, ...]


@dataclass(frozen=True)
class CountChoice:
    """The category chosen for one image: its count and boxes (annotation order); ``skip`` says why not."""

    image_id: int
    file_name: str
    category_id: int | None
    plural: str
    num: int
    boxes: tuple[tuple[int, int, int, int], ...]
    annotation_ids: tuple[int, ...]


UNUSABLE_BOX = "an instance of the counted category has no box on the 336 grid (image skipped, not undercounted)"


def image_categories(images: Sequence[CountImage]) -> dict[int, dict[int, list[int]]]:
    """Cell 2: image -> {category: [annotation index]} in annotation order, not-exhaustive
    categories removed, and images left with none removed (they become negatives)."""
    out: dict[int, dict[int, list[int]]] = {}
    for img in images:
        cats: dict[int, list[int]] = {}
        for i, (_ann, cat, _box) in enumerate(img.annotations):
            cats.setdefault(cat, []).append(i)
        for cat in img.not_exhaustive_category_ids:
            cats.pop(cat, None)  # the notebook's `del` (a KeyError there for a category without boxes)
        if cats:
            out[img.image_id] = cats
    return out


def select_count_images(images: Sequence[CountImage], use_ids: Iterable[int], plural_of: Callable[[int], str],
                        rng: random.Random, *, atomic: bool, max_count: int = MAX_COUNT,
                        max_per_count: int = MAX_PER_COUNT) -> tuple[list[tuple[CountChoice, str]], dict[str, int]]:
    """Cells 4 (``atomic=True``) and 5: ``[(choice, atomic question or "")]`` in the notebook's order.

    ``images`` in the LVIS file order; ``rng`` freshly seeded (the notebook calls
    ``random.seed(0)`` at the top of each cell). The order is ``rng.shuffle`` of all images;
    only ids in ``use_ids`` (the notebook's train_ids / cot_ids) are used. An image without
    kept annotations is a negative: a category drawn from its ``neg_category_ids``; otherwise
    the category with the most instances (first in annotation order on ties). An image whose
    chosen category has an annotation without a grid box is skipped, never counted short (the
    notebook's ``is_valid = all(str(t) in annotations ...)`` then ``continue``, cells 4-5). Counts above
    ``max_count`` and counts already used ``max_per_count`` times are skipped. Returns the
    choices and skip counts by reason.
    """
    use = set(use_ids)
    cats_of = image_categories(images)
    items = list(images)
    rng.shuffle(items)
    count_dict: dict[int, int] = {}
    skipped: dict[str, int] = {}
    out: list[tuple[CountChoice, str]] = []
    for img in items:
        if img.image_id not in use:
            continue
        if img.image_id not in cats_of:
            if not img.neg_category_ids:  # random.sample([], 1) raises in the notebook
                skipped["negative image without neg_category_ids"] = skipped.get("negative image without neg_category_ids", 0) + 1
                continue
            cat = rng.sample(list(img.neg_category_ids), 1)[0]
            num, idx = 0, []
        else:
            cats = list(cats_of[img.image_id])
            nums = [len(cats_of[img.image_id][c]) for c in cats]
            index = int(np.argmax(nums))
            num, cat = nums[index], cats[index]
            idx = cats_of[img.image_id][cat]
            if any(img.annotations[i][2] is None for i in idx):
                skipped[UNUSABLE_BOX] = skipped.get(UNUSABLE_BOX, 0) + 1
                continue
            if num > max_count:
                skipped[f"more than {max_count} instances"] = skipped.get(f"more than {max_count} instances", 0) + 1
                continue
        if count_dict.get(num, 0) >= max_per_count:
            skipped[f"count {num} already has {max_per_count} images"] = skipped.get(f"count {num} already has {max_per_count} images", 0) + 1
            continue
        count_dict[num] = count_dict.get(num, 0) + 1
        plural = plural_of(cat)
        question = rng.choice(COUNT_ATOMIC_QUESTIONS).format(plural=plural) if atomic else ""
        boxes = tuple(img.annotations[i][2] for i in idx)
        out.append((CountChoice(img.image_id, img.file_name, cat, plural, num, boxes,
                                tuple(img.annotations[i][0] for i in idx)), question))
    return out, skipped


def _box_lines(boxes: Sequence[tuple[int, int, int, int]]) -> str:
    return "".join(COUNT_BOX_LINE.format(i=i + 1, x1=x1, y1=y1, x2=x2, y2=y2) for i, (x1, y1, x2, y2) in enumerate(boxes))


def count_atomic_answer(choice: CountChoice) -> str:
    if choice.num == 0:
        return COUNT_NONE.format(plural=choice.plural)
    return (COUNT_ATOMIC_HEADER.format(plural=choice.plural) + _box_lines(choice.boxes))[:-1]


def count_direct_qa(choice: CountChoice) -> tuple[str, str]:
    return COUNT_QUESTION.format(plural=choice.plural), str(choice.num)


def count_cot_qa(choice: CountChoice) -> tuple[str, str]:
    p, n = choice.plural, choice.num
    if n == 0:
        answer = COUNT_COT_NONE.format(plural=p, num=n)
    else:
        answer = COUNT_COT_HEADER.format(plural=p) + _box_lines(choice.boxes) + COUNT_COT_CONCLUSION.format(num=n, plural=p)
    return COUNT_COT_QUESTION.format(plural=p), answer


# ---------------------------------------------------------------------------- schedule (depth cell 3, bbox cell 7)


def sequential_epochs(atomic: Sequence[Any], reasoning: Sequence[Any], *, total_length: int,
                      percents: Sequence[float] = PERCENTS, epochs: int = 10, seed: int = 0) -> list[tuple[int, Any]]:
    """Each epoch: ``rng.sample(atomic, int(total_length * percent))`` then the whole reasoning
    list ``(total_length - n_atomic) // len(reasoning)`` times, in its fixed order; epochs in order.

    ``reasoning`` is the notebooks' list: each image's direct record, then its CoT record.
    Raises ValueError when the atomic pool is smaller than an epoch needs (the notebook's
    ``random.sample`` would) or reasoning samples are needed but the pool is empty.
    """
    if len(percents) < epochs:
        raise ValueError(f"{len(percents)} percents for {epochs} epochs")
    rng = random.Random(seed)
    out: list[tuple[int, Any]] = []
    for epoch in range(epochs):
        n_atomic = int(total_length * percents[epoch])
        if n_atomic > len(atomic):
            raise ValueError(f"epoch {epoch} needs {n_atomic} atomic samples but the pool holds {len(atomic)} "
                             f"(set curriculum.epoch_size <= the atomic pool)")
        chosen = rng.sample(list(atomic), n_atomic)
        n_reasoning = total_length - n_atomic
        if n_reasoning and not reasoning:
            raise ValueError(f"epoch {epoch} needs {n_reasoning} reasoning samples but the reasoning pool is empty")
        repeat = n_reasoning // len(reasoning) if reasoning else 0
        out += [(epoch, s) for s in chosen] + [(epoch, s) for s in list(reasoning) * repeat]
    return out


def llava_record(record_id: str, image: str, question: str, answer: str) -> dict[str, Any]:
    """The notebooks' ``new_entry`` (their ids are uuid4; callers pass a deterministic id)."""
    return {"id": record_id, "image": image,
            "conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": f"{answer}"}]}


def plural_table(names: Mapping[int, str], plurals: Mapping[str, str] | None, fallback: Callable[[str], str]) -> Callable[[int], str]:
    """category id -> plural: ``plurals[name.replace('_', ' ')]`` (the notebook's GPT-4o table) or ``fallback``."""
    def plural_of(cat: int) -> str:
        name = names[cat].replace("_", " ")
        return plurals[name] if plurals and name in plurals else fallback(name)
    return plural_of
