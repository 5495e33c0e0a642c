"""Task pools in the ``aurora`` style: the pipeline's table rows through the notebooks' logic.

:mod:`.aurora_reference` holds the notebooks' logic on plain values; this module feeds it
from the pipeline's rows (marked points, depth tokens, LVIS images and boxes) and returns
:class:`Sample` objects, so the rest of the pipeline (schedule, export, checks) is shared
with the project style. Lists come back in the notebooks' order: the reasoning list holds,
per image, the direct sample then the CoT sample.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from perception_tokens.aurora_marks import AuroraMarks
from perception_tokens.curriculum import aurora_reference
from perception_tokens.curriculum.plurals import pluralize
from perception_tokens.curriculum.reference_files import load_id_array
from perception_tokens.curriculum.pools import marked_image_file, source_image_file
from perception_tokens.curriculum.sample import ImageRef, Sample, make_sample_id
from perception_tokens.curriculum.tasks import depth_string


def marks_of(row: Mapping[str, Any]) -> AuroraMarks:
    """A marked_points row (letters in drawing order) as the notebook's mapping."""
    return AuroraMarks(tuple(row["letters"]), tuple((int(x), int(y)) for x, y in zip(row["xs"], row["ys"])),
                       tuple(float(d) for d in row["depth_values"]))


def depth_reasoning(marked_rows: Iterable[Mapping[str, Any]], codes_by_image: Mapping[tuple[str, str], tuple[list[int], str]],
                    skipped: dict[str, dict[str, int]]) -> list[Sample]:
    """create_depth_annealing_data.ipynb cell 2: per marked image a direct then a CoT sample."""
    out: list[Sample] = []
    for m in marked_rows:
        key = (m["dataset"], m["image_id"])
        if key not in codes_by_image:
            skipped.setdefault("depth_cot", {}).setdefault("no depth tokens for the image", 0)
            skipped["depth_cot"]["no depth tokens for the image"] += 1
            continue
        codes, version = codes_by_image[key]
        marks = marks_of(m)
        image = ImageRef(m["dataset"], m["image_id"], marked_image_file(m["marked_id"]))
        common = dict(image=image, target=marks.answer, dataset=m["dataset"], image_id=m["image_id"])
        q, a = aurora_reference.depth_direct_qa(marks)
        out.append(Sample(sample_id=make_sample_id("depth_direct", *key, "aurora"), task="depth_direct", kind="direct",
                          question=q, answer=a, **common))
        q, a = aurora_reference.depth_cot_qa(marks, depth_string(codes))
        out.append(Sample(sample_id=make_sample_id("depth_cot", *key, "aurora"), task="depth_cot", kind="cot",
                          question=q, answer=a, depth_token_version=version, **common))
    return out


def count_images(lvis_rows: Iterable[Mapping[str, Any]], box_rows: Iterable[Mapping[str, Any]],
                 instance_rows: Iterable[Mapping[str, Any]] | None = None) -> tuple[list[aurora_reference.CountImage], dict[int, str]]:
    """LVIS image rows (file order) and their box rows (annotation order) as the notebook's view,
    plus category id -> name for every category seen (boxes and negative lists).

    ``instance_rows`` (``lvis_instances``, annotation order): every annotation, so one whose box
    ``box_tokens`` rejected (collapsed on the 336 grid) stays in its image with box ``None`` and
    the image is skipped rather than counted short. Without them only the box rows are seen."""
    anns: dict[str, list] = {}
    names: dict[int, str] = {}
    boxes = {}
    for b in box_rows:
        if b["dataset"] != "lvis":
            continue
        names[int(b["category_id"])] = b["category_name"]
        boxes[int(b["annotation_id"])] = (str(b["image_id"]), int(b["category_id"]),
                                          (int(b["x1"]), int(b["y1"]), int(b["x2"]), int(b["y2"])))
    if instance_rows is None:
        for ann, (image_id, category_id, box) in boxes.items():
            anns.setdefault(image_id, []).append((ann, category_id, box))
    else:
        for r in instance_rows:
            ann, category_id = int(r["annotation_id"]), int(r["category_id"])
            names.setdefault(category_id, r["category_name"])
            box = boxes[ann][2] if ann in boxes else None
            anns.setdefault(str(r["image_id"]), []).append((ann, category_id, box))
    images = []
    for r in lvis_rows:
        neg = [int(c) for c in (r.get("neg_category_ids") or [])]
        names.update(zip(neg, r.get("neg_category_names") or []))
        images.append(aurora_reference.CountImage(str(r["image_id"]), str(r["image_id"]), tuple(anns.get(str(r["image_id"]), ())),
                                   tuple(neg), tuple(int(c) for c in (r.get("not_exhaustive_category_ids") or []))))
    return images, names


def split_count_ids(image_ids: Sequence[str], n_atomic: int | None, n_cot: int | None, seed: int,
                    ids_dir: str | None = None) -> tuple[list[str], list[str]]:
    """Disjoint (atomic ids, CoT ids): Aurora's train_ids.npy / cot_ids.npy from ``ids_dir``, or a
    seeded draw of ``n_cot`` then ``n_atomic`` images (scaled down in proportion when fewer exist)."""
    if ids_dir:
        got = []
        for name in ("train_ids.npy", "cot_ids.npy"):
            path = Path(ids_dir) / name
            if not path.is_file():
                raise FileNotFoundError(f"{path}: curriculum.count_image_ids names a folder without {name}")
            got.append(load_id_array(path))  # plain int arrays; never unpickled
        return got[0], got[1]
    n = len(image_ids)
    n_atomic, n_cot = n_atomic or n, n_cot or max(1, n // 20)
    if n_atomic + n_cot > n:
        n_cot = max(1, round(n * n_cot / (n_atomic + n_cot)))
        n_atomic = n - n_cot
    order = list(image_ids)
    random.Random(seed).shuffle(order)
    return order[n_cot:n_cot + n_atomic], order[:n_cot]


def load_plurals(path: str | None) -> dict[str, str] | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: curriculum.plurals_file is not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{path}: curriculum.plurals_file must map category names to plurals (strings)")
    return data


def count_pools(lvis_rows: Iterable[Mapping[str, Any]], box_rows: Iterable[Mapping[str, Any]],
                image_formats: Mapping[tuple[str, str], str], *, seed: int, n_atomic: int | None, n_cot: int | None,
                max_per_count: int, ids_dir: str | None = None, plurals: Mapping[str, str] | None = None,
                skipped: dict[str, dict[str, int]],
                instance_rows: Iterable[Mapping[str, Any]] | None = None) -> tuple[list[Sample], list[Sample]]:
    """create_bbox_annealing_data.ipynb cells 2-6: (count_atomic samples, [count_direct, count_cot] per image)."""
    images, names = count_images([r for r in lvis_rows if ("lvis", str(r["image_id"])) in image_formats], box_rows,
                                 instance_rows)
    atomic_ids, cot_ids = split_count_ids([i.image_id for i in images], n_atomic, n_cot, seed, ids_dir)
    plural_of = aurora_reference.plural_table(names, plurals, pluralize)

    def sample(task: str, kind: str, choice: aurora_reference.CountChoice, q: str, a: str) -> Sample:
        iid = str(choice.image_id)
        return Sample(sample_id=make_sample_id(task, "lvis", iid, "aurora"), task=task, kind=kind,
                      image=ImageRef("lvis", iid, source_image_file("lvis", iid, image_formats[("lvis", iid)])),
                      question=q, answer=a, target=str(choice.num), dataset="lvis", image_id=iid,
                      annotation_ids=choice.annotation_ids)

    atomic_choices, why = aurora_reference.select_count_images(images, atomic_ids, plural_of, random.Random(seed), atomic=True,
                                                max_per_count=max_per_count)
    for reason, n in why.items():
        skipped.setdefault("count_atomic", {})[reason] = n
    cot_choices, why = aurora_reference.select_count_images(images, cot_ids, plural_of, random.Random(seed), atomic=False,
                                             max_per_count=max_per_count)
    for reason, n in why.items():
        skipped.setdefault("count_cot", {})[reason] = n
    atomic = [sample("count_atomic", "atomic", c, q, aurora_reference.count_atomic_answer(c)) for c, q in atomic_choices]
    reasoning = [s for c, _ in cot_choices
                 for s in (sample("count_direct", "direct", c, *aurora_reference.count_direct_qa(c)), sample("count_cot", "cot", c, *aurora_reference.count_cot_qa(c)))]
    return atomic, reasoning
