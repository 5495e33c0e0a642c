"""Small benchmark sets with known answers, written in the exact published formats.

From scenes with exact metric depth and object boxes (e.g. the procedural demo scenes)
this writes, under one root:

- ``hardblink/``: HardBLINK 3/4/5 points, red circles labelled above ("center" markers);
- ``blink/``: BLINK ``Relative_Depth`` (2 points, labels beside) and ``Counting`` Parquet;
- ``cvbench/``: CV-Bench ``test_2d.parquet`` (Count, sources ADE20K/COCO alternating)
  and ``test_3d.parquet`` (Depth, source Omni3D, red/blue boxes);
- ``blink_counting/``, ``seedbench/``: Aurora's open-ended counting sets in their released flat
  layout (integer ids and ``N.png``; string ids and ``.jpg``, answers without category), their
  images apart under ``counting_images/<set>/`` as the release distributes them separately;
- ``refcoco_res/`` (RES, refer layout) and ``zoom/`` (a tiny label in a large image, with its
  ground-truth box: :mod:`evaluation.benchmarks.zoom_demo`).

Each set is then readable by the matching reader in :mod:`evaluation.benchmarks`.
The function returns the answer key so a test (or a check) can compare what the
readers give back with what was written.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from perception_tokens.curriculum.plurals import clean_category_name, pluralize
from perception_tokens.curriculum.templates import COUNT_QUESTION, DEPTH_POINTS_QUESTION
from perception_tokens.images import encode_png
from perception_tokens.markers import PointSamplingError, choose_points, closest_point, draw_markers
from perception_tokens.paths import atomic_write_bytes
from perception_tokens.vocab import PIXEL_GRID

from evaluation.benchmarks import counting, hardblink, registry
from evaluation.benchmarks.counting import BLINK_COUNT, SEED_COUNT
from evaluation.benchmarks.demo_formats import (
    BLINK_SCHEMA,
    CVBENCH_SCHEMA,
    blink_row,
    cvbench_row,
    encode_jpeg,
    write_jsonl,
    write_parquet,
)
from evaluation.benchmarks.records import LETTERS
from evaluation.benchmarks.refcoco_res_demo import write_demo_refcoco_res
from evaluation.benchmarks.zoom_demo import write_demo_zoom

BLINK_DEPTH_QUESTION = "Which point is closer to the camera?"
CVBENCH_DEPTH_QUESTION = (
    "Which object is closer to the camera taking this photo, the {first} (highlighted by a red box) "
    "or the {second} (highlighted by a blue box)?"
)
CVBENCH_COUNT_SOURCES = ("ADE20K", "COCO")
HARDBLINK_CATEGORY = "count"  # what the released HardBLINK files carry in "category"
RED, BLUE = (255, 0, 0), (0, 0, 255)
# counting set -> (its folder, its image folder) under the demo root, as the registry has them
COUNTING_DEMO_LAYOUT = {
    BLINK_COUNT[1]: (registry.get("blink_counting").demo_dir, registry.get("blink_counting").demo_images_dir),
    SEED_COUNT[1]: (registry.get("seed_counting").demo_dir, registry.get("seed_counting").demo_images_dir),
}
SEED_DEMO_FIRST_ID = 100000  # SEED-Bench ids are strings of large numbers



@dataclass
class DemoObject:
    category: str
    bbox_xywh: tuple[float, float, float, float]
    mean_depth: float | None = None


@dataclass
class DemoManifest:
    """What was written: ``answers[(benchmark, subset, question_id)] = gold``, and skips."""

    root: Path
    answers: dict[tuple[str, str, str], str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def counts(self) -> dict[tuple[str, str], int]:
        return dict(Counter((b, s) for b, s, _ in self.answers))


# ---------------------------------------------------------------------------- inputs


def demo_depth_name(benchmark: str, subset: str, question_id: str) -> str:
    return f"{benchmark}_{subset}_{question_id}.npy".replace("/", "_")


def demo_points_name(benchmark: str, subset: str, question_id: str) -> str:
    """Beside the depth: the marked points of a relative-depth question, ``{letter: [x, y]}`` on the 336 grid."""
    return f"{benchmark}_{subset}_{question_id}.points.json".replace("/", "_")


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def _normalise_scene(scene: Any) -> tuple[np.ndarray, np.ndarray, list[DemoObject]]:
    """A Scene-like object (``rgb``, ``depth``, ``objects``) or an ``(rgb, depth, objects)`` tuple."""
    if isinstance(scene, (tuple, list)):
        rgb, depth, objects = scene
    else:
        rgb, depth, objects = scene.rgb, scene.depth, scene.objects
    rgb = np.asarray(rgb)
    depth = np.asarray(depth, dtype=np.float32)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"scene rgb must be uint8 HxWx3, got {rgb.dtype} {rgb.shape}")
    if depth.shape != rgb.shape[:2]:
        raise ValueError(f"scene depth {depth.shape} does not match rgb {rgb.shape[:2]}")
    objs = []
    for o in objects:
        category = _get(o, "category")
        bbox = _get(o, "bbox_xywh", "bbox")
        if not category or bbox is None:
            raise ValueError(f"scene object {o!r} needs a category and a bbox [x, y, w, h]")
        mean_depth = _get(o, "mean_depth")
        objs.append(DemoObject(str(category), tuple(float(v) for v in bbox), None if mean_depth is None else float(mean_depth)))
    return rgb, depth, objs


def depth_to_uint8(depth_metric: np.ndarray) -> np.ndarray:
    """Metric depth (larger = farther) -> Depth Anything convention: min-max inverse depth, uint8, larger = nearer."""
    inv = 1.0 / np.maximum(depth_metric.astype(np.float64), 1e-6)
    lo, hi = float(inv.min()), float(inv.max())
    if hi - lo < 1e-12:
        return np.zeros(depth_metric.shape, np.uint8)
    return np.round((inv - lo) / (hi - lo) * 255.0).astype(np.uint8)


def _to_grid(rgb: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = (PIXEL_GRID, PIXEL_GRID)
    rgb336 = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    depth336 = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(rgb336), depth_to_uint8(depth336)


def _object_depth(obj: DemoObject, depth: np.ndarray) -> float:
    if obj.mean_depth is not None:
        return obj.mean_depth
    x, y, w, h = obj.bbox_xywh
    patch = depth[int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))]
    return float(np.median(patch)) if patch.size else float("inf")


def _number_choices(count: int, n: int, rng: np.random.Generator) -> tuple[list[str], str]:
    """``n`` consecutive counts containing ``count`` at a random place -> (choices, gold letter)."""
    start = int(rng.integers(max(0, count - n + 1), count + 1))
    values = list(range(start, start + n))
    return [str(v) for v in values], LETTERS[values.index(count)]


# ---------------------------------------------------------------------------- writer


def write_demo_benchmarks(
    root: str | Path,
    scenes: Sequence[Any],
    seed: int = 0,
    *,
    point_counts: Sequence[int] = hardblink.POINT_COUNTS,
    depth_dir: str | Path | None = None,
) -> DemoManifest:
    """Write every demo benchmark set under ``root`` and return the answer key.

    ``scenes``: Scene-like objects (``rgb`` uint8 HxWx3, ``depth`` float32 metres,
    ``objects`` with ``category`` and ``bbox_xywh``/``bbox``) or ``(rgb, depth, objects)``
    tuples. A scene that cannot give a question (too flat for N distinct points, no two
    objects of different categories) is skipped with a reason in ``manifest.skipped``.
    Deterministic for a given ``seed``. With ``depth_dir``, the scene's metric depth at 336x336
    is saved for every relative-depth image as ``<benchmark>_<subset>_<question_id>.npy``
    (the demo's stand-in for a depth teacher, used by the oracle-token ablation).
    """
    root = Path(root)
    depth_out = Path(depth_dir) if depth_dir is not None else None
    if depth_out is not None:
        depth_out.mkdir(parents=True, exist_ok=True)

    def save_depth(benchmark: str, subset: str, qid: str, metric336: np.ndarray, points=()) -> None:
        if depth_out is not None:
            np.save(depth_out / demo_depth_name(benchmark, subset, qid), metric336.astype(np.float32), allow_pickle=False)
            if points:  # where the markers were drawn, for reading the answer off a decoded depth map
                atomic_write_bytes(depth_out / demo_points_name(benchmark, subset, qid),
                                   json.dumps({p.letter: [int(p.x), int(p.y)] for p in points}).encode(), fsync=False)

    rng = np.random.default_rng(seed)
    manifest = DemoManifest(root=root)

    hb_questions: dict[int, list[dict]] = {n: [] for n in point_counts}
    hb_answers: dict[int, list[dict]] = {n: [] for n in point_counts}
    blink_rows: dict[str, list[dict]] = {"Relative_Depth": [], "Counting": []}
    cv2d: list[dict] = []
    cv3d: list[dict] = []
    open_counts: dict[str, tuple[list[dict], list[dict]]] = {BLINK_COUNT[1]: ([], []), SEED_COUNT[1]: ([], [])}

    for i, scene in enumerate(scenes):
        rgb, depth, objects = _normalise_scene(scene)
        rgb336, depth_u8 = _to_grid(rgb, depth)
        metric336 = cv2.resize(depth, (PIXEL_GRID, PIXEL_GRID), interpolation=cv2.INTER_NEAREST)

        # HardBLINK: n points, labels centred above the circles.
        for n in point_counts:
            try:
                points = choose_points(depth_u8, n, rng)
            except PointSamplingError as exc:
                manifest.skipped.append(f"scene {i}: HardBLINK {n} points: {exc.reason}")
                continue
            qid = len(hb_questions[n])
            marked, _ = draw_markers(rgb336, points, variant="center")
            atomic_write_bytes(root / registry.get("hardblink").demo_dir / hardblink.image_dir(n) / f"{qid}.png", encode_png(marked), fsync=False)
            gold = closest_point(points)
            hb_questions[n].append(
                {"question_id": qid, "image": f"{qid}.png", "text": DEPTH_POINTS_QUESTION, "category": HARDBLINK_CATEGORY}
            )
            hb_answers[n].append({"question_id": qid, "text": f"({gold})", "category": HARDBLINK_CATEGORY})
            manifest.answers[(hardblink.BENCHMARK, hardblink.subset_name(n), str(qid))] = gold
            save_depth(hardblink.BENCHMARK, hardblink.subset_name(n), str(qid), metric336, points)

        # BLINK Relative_Depth: 2 points, labels beside.
        try:
            points = choose_points(depth_u8, 2, rng)
            marked, _ = draw_markers(rgb336, points, variant="beside")
            gold = closest_point(points)
            idx = f"val_Relative_Depth_{len(blink_rows['Relative_Depth']) + 1}"
            choices = ["A", "B"]
            blink_rows["Relative_Depth"].append(
                blink_row(idx, "Relative Depth", BLINK_DEPTH_QUESTION, choices, gold, encode_png(marked))
            )
            manifest.answers[("BLINK", "Relative_Depth", idx)] = gold
            save_depth("BLINK", "Relative_Depth", idx, metric336, points)
        except PointSamplingError as exc:
            manifest.skipped.append(f"scene {i}: BLINK Relative_Depth: {exc.reason}")

        if not objects:
            manifest.skipped.append(f"scene {i}: no objects, no counting or CV-Bench questions")
            continue
        by_category = Counter(clean_category_name(o.category) for o in objects)
        image_png = encode_png(rgb)

        # BLINK Counting (multiple choice, 4 consecutive numbers).
        category = sorted(by_category)[int(rng.integers(len(by_category)))]
        choices, gold = _number_choices(by_category[category], 4, rng)
        idx = f"val_Counting_{len(blink_rows['Counting']) + 1}"
        question = COUNT_QUESTION.format(plural=pluralize(category))
        blink_rows["Counting"].append(blink_row(idx, "Counting", question, choices, gold, image_png))
        manifest.answers[("BLINK", "Counting", idx)] = gold

        # CV-Bench Count (2D): sources alternate so the official 2D average has both.
        category = sorted(by_category)[int(rng.integers(len(by_category)))]
        choices, gold = _number_choices(by_category[category], 5, rng)
        question = COUNT_QUESTION.format(plural=pluralize(category))
        cv2d.append(
            cvbench_row(len(cv2d), "2D", "Count", question, choices, gold, image_png, CVBENCH_COUNT_SOURCES[i % 2], i)
        )

        # CV-Bench Depth (3D): two objects of different categories, clearly apart in depth.
        pair = _depth_pair(objects, depth, rng)
        if pair is None:
            manifest.skipped.append(f"scene {i}: CV-Bench Depth: no two objects of different categories apart in depth")
        else:
            first, second, nearer = pair
            boxed = rgb.copy()
            for obj, colour in ((first, RED), (second, BLUE)):
                x, y, w, h = (int(round(v)) for v in obj.bbox_xywh)
                cv2.rectangle(boxed, (x, y), (x + w - 1, y + h - 1), colour, 2)
            names = [clean_category_name(first.category), clean_category_name(second.category)]
            question = CVBENCH_DEPTH_QUESTION.format(first=names[0], second=names[1])
            cv3d.append(
                cvbench_row(None, "3D", "Depth", question, names, LETTERS[nearer], encode_png(boxed), "Omni3D", i)
            )

        # Aurora's open-ended counting sets, as released: BLINK integer ids and N.png with a
        # category on answers; SEED string ids, .jpg images, answers without category.
        for name in open_counts:
            category = sorted(by_category)[int(rng.integers(len(by_category)))]
            questions, answers = open_counts[name]
            folder, image_folder = COUNTING_DEMO_LAYOUT[name]
            text = COUNT_QUESTION.format(plural=pluralize(category))
            gold = str(by_category[category])
            if name == BLINK_COUNT[1]:
                qid: int | str = len(questions)
                image_name, image_bytes = f"{qid}.png", image_png
                questions.append({"question_id": qid, "image": image_name, "text": text, "category": "count"})
                answers.append({"question_id": qid, "text": gold, "category": "count"})
            else:
                qid = str(SEED_DEMO_FIRST_ID + len(questions))
                image_name, image_bytes = f"{qid}_{i}.jpg", encode_jpeg(rgb)
                questions.append({"question_id": qid, "text": text, "category": "count", "image": image_name})
                answers.append({"question_id": qid, "text": gold})
            atomic_write_bytes(root / image_folder / image_name, image_bytes, fsync=False)
            benchmark = BLINK_COUNT[0] if name == BLINK_COUNT[1] else SEED_COUNT[0]
            manifest.answers[(benchmark, "count", str(qid))] = gold

    # CV-Bench idx is global across the 2D and 3D files.
    for k, row in enumerate(cv3d):
        row["idx"] = len(cv2d) + k
    for row in cv2d + cv3d:
        manifest.answers[("CV-Bench", row["task"], str(row["idx"]))] = row["answer"].strip("()")

    for n in point_counts:
        write_jsonl(root / registry.get("hardblink").demo_dir / hardblink.questions_file(n), hb_questions[n])
        write_jsonl(root / registry.get("hardblink").demo_dir / hardblink.answers_file(n), hb_answers[n])
    for subtask, rows in blink_rows.items():
        write_parquet(root / registry.get("blink").demo_dir / subtask / "val-00000-of-00001.parquet", rows, BLINK_SCHEMA)
    write_parquet(root / registry.get("cvbench").demo_dir / "test_2d.parquet", cv2d, CVBENCH_SCHEMA)
    write_parquet(root / registry.get("cvbench").demo_dir / "test_3d.parquet", cv3d, CVBENCH_SCHEMA)
    for name, (questions, answers) in open_counts.items():
        folder = root / COUNTING_DEMO_LAYOUT[name][0]
        write_jsonl(folder / counting.questions_file(name), questions)
        write_jsonl(folder / counting.answers_file(name), answers)
    # RES: refer-layout RefCOCO/+/g of as many scenes of its own (the answer key is the masks
    # in the files; tests/evaluation/test_refcoco_res_benchmark.py checks them)
    write_demo_refcoco_res(root / registry.get("refcoco_res").demo_dir, len(scenes), seed)
    # zoom: a tiny label in a large image, with its box (VPT's region selection); its own random stream
    manifest.answers.update(write_demo_zoom(root / registry.get("zoom").demo_dir, max(4, len(scenes)), seed))
    return manifest


def _depth_pair(objects: list[DemoObject], depth: np.ndarray, rng: np.random.Generator):
    """Two objects of different categories whose depths differ by >= 15%: (first, second, index of nearer)."""
    pairs = []
    for a in range(len(objects)):
        for b in range(a + 1, len(objects)):
            oa, ob = objects[a], objects[b]
            if clean_category_name(oa.category) == clean_category_name(ob.category):
                continue
            da, db = _object_depth(oa, depth), _object_depth(ob, depth)
            if abs(da - db) >= 0.15 * min(da, db):
                pairs.append((oa, ob, da, db))
    if not pairs:
        return None
    oa, ob, da, db = pairs[int(rng.integers(len(pairs)))]
    if rng.random() < 0.5:  # the nearer object is not always listed first
        oa, ob, da, db = ob, oa, db, da
    return oa, ob, 0 if da < db else 1
