"""Write demo scenes to disk in the official layouts of ADE20K, LVIS v1 and RefCOCO.

Layout under ``root`` (same as the real downloads, so the readers cannot tell):

    ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_%08d.jpg
    ADEChallengeData2016/annotations/{training,validation}/ADE_{train,val}_%08d.png
    lvis/lvis_v1_train.json, lvis/lvis_v1_val.json
    coco/train2017/%012d.jpg, coco/val2017/%012d.jpg        (LVIS images)
    coco/train2014/COCO_train2014_%012d.jpg                 (RefCOCO images)
    refcoco/instances.json, refcoco/refs(unc).p
    demo_depth/<dataset>/<image_id>.npy                    (exact metric depth, float32)
    demo_manifest.json                                      (what was written; the truth)

Everything is a pure function of ``seed`` (same bytes on every run). The datasets are
built in a staging folder and then moved into place, so a reader never sees a half
written tree and files left over from an earlier, larger demo do not linger.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from ..images import encode_png
from ..paths import atomic_write_bytes, atomic_write_text, safe_join
from .catalog import (
    ADE_CEILING,
    ADE_FLOOR,
    ADE_OTHER,
    ADE_WALL,
    COCO_LICENSES,
    LVIS_EXTRA_CATEGORIES,
    SCENE_CATEGORY_INFO,
)
from .expressions import referring_expressions, tokenize
from .scenes import SURFACE_CEILING, SURFACE_FLOOR, SURFACE_WALL, Scene, generate_scene

__all__ = [
    "DemoManifest",
    "write_demo_datasets",
    "ground_truth_depth_path",
    "load_ground_truth_depth",
    "DEMO_DATASETS",
    "MANIFEST_NAME",
]

DEMO_DATASETS = ("ade20k", "lvis", "refcoco")
MANIFEST_NAME = "demo_manifest.json"
_TOP_DIRS = ("ADEChallengeData2016", "lvis", "coco", "refcoco", "demo_depth")
_DATASET_CODE = {"ade20k": 1, "lvis": 2, "refcoco": 3, "ids": 99}
_JPEG_QUALITY = 92
_IMAGE_ID_RE = re.compile(r"^[A-Za-z0-9_]+$")
_FIRST_LVIS_ANN_ID = 1
_FIRST_REFCOCO_ANN_ID = 500_001


@dataclass
class DemoManifest:
    """What ``write_demo_datasets`` wrote: the ground truth readers are checked against."""

    root: str
    seed: int
    image_size: tuple[int, int]  # (width, height) of landscape images; every 4th is portrait
    image_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> split -> n
    image_ids: dict[str, list[str]] = field(default_factory=dict)  # dataset -> ids (write order)
    image_splits: dict[str, dict[str, str]] = field(default_factory=dict)  # dataset -> id -> split
    image_sizes: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # id -> (w, h)
    annotation_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # lvis/refcoco -> split -> n
    ref_counts: dict[str, int] = field(default_factory=dict)  # refcoco split -> refs
    sentence_counts: dict[str, int] = field(default_factory=dict)  # refcoco split -> sentences
    files: dict[str, str] = field(default_factory=dict)  # role -> path relative to root

    @property
    def n_refs(self) -> int:
        return sum(self.ref_counts.values())

    @property
    def n_sentences(self) -> int:
        return sum(self.sentence_counts.values())

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- helpers


def _scene_rng(seed: int, dataset: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _DATASET_CODE[dataset], index]))


def _image_size(image_size: tuple[int, int], index: int) -> tuple[int, int]:
    w, h = image_size
    return (h, w) if index % 4 == 3 else (w, h)  # some portrait images, like real photos


def _split_counts(n: int, fractions: dict[str, float], first: str) -> dict[str, int]:
    """Split n items: each non-first split gets round(n*frac) (at least 1 if n allows)."""
    counts = {}
    rest = n
    for name, frac in fractions.items():
        if name == first:
            continue
        k = max(1, int(round(n * frac))) if n > len(fractions) - 1 else 0
        k = min(k, rest)
        counts[name] = k
        rest -= k
    return {first: rest, **counts}


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=_JPEG_QUALITY)
    return buf.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    # Regenerable bulk files skip fsync; the manifest (written last) is fsynced.
    atomic_write_bytes(path, data, fsync=False)


def _polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons tracing the pixel edges of a bool mask (outer contours only).

    Contours of the raw mask run through boundary pixel *centres*, so rasterising them
    loses half a pixel all round (a third of a small object). Tracing a 2x nearest-
    upsampled mask and mapping back with (c + 0.5) / 2 puts the vertices within 1/4 px of
    the pixel edges: pycocotools then rasterises the polygons back to (almost exactly)
    the mask and its bbox, as for a careful human annotation.
    """
    k = 2
    big = np.repeat(np.repeat(mask.astype(np.uint8), k, axis=0), k, axis=1)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) >= 3:
            polys.append([round((float(v) + 0.5) / k, 2) for v in c.reshape(-1)])
    return polys


def _bbox(bbox_xywh: tuple[float, float, float, float]) -> list[float]:
    return [round(float(v), 2) for v in bbox_xywh]


def ground_truth_depth_path(root: str | os.PathLike, dataset: str, image_id: str | int) -> Path:
    """Where the demo's exact depth map of ``image_id`` lives (``demo_depth/<dataset>/<id>.npy``)."""
    if dataset not in DEMO_DATASETS:
        raise ValueError(f"unknown demo dataset {dataset!r}; expected one of {DEMO_DATASETS}")
    image_id = str(image_id)
    if not _IMAGE_ID_RE.match(image_id):
        raise ValueError(f"image id {image_id!r} is not a plain name (letters, digits, underscore)")
    return safe_join(root, f"demo_depth/{dataset}/{image_id}.npy")


def load_ground_truth_depth(root: str | os.PathLike, dataset: str, image_id: str | int) -> np.ndarray:
    """Load a demo depth map (float32 HxW metres, larger = farther) without pickle."""
    path = ground_truth_depth_path(root, dataset, image_id)
    if not path.is_file():
        raise FileNotFoundError(f"no ground-truth depth for {dataset} image {image_id}: {path} does not exist")
    try:
        depth = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path}: not a plain .npy array: {exc}") from exc
    if depth.dtype != np.float32 or depth.ndim != 2:
        raise ValueError(f"{path}: expected float32 HxW depth, got {depth.dtype} {depth.shape}")
    return depth


# ----------------------------------------------------------------------------- ADE20K


def _ade_label_map(scene: Scene) -> np.ndarray:
    labels = np.full(scene.surface.shape, ADE_OTHER, dtype=np.uint8)
    labels[scene.surface == SURFACE_FLOOR] = ADE_FLOOR
    labels[scene.surface == SURFACE_WALL] = ADE_WALL
    labels[scene.surface == SURFACE_CEILING] = ADE_CEILING
    for obj in scene.objects:
        labels[obj.mask] = SCENE_CATEGORY_INFO[obj.category].ade_index
    return labels


def _write_ade20k(stage: Path, n: int, seed: int, image_size, m: DemoManifest, progress) -> None:
    counts = _split_counts(n, {"training": 0.8, "validation": 0.2}, first="training")
    base = stage / "ADEChallengeData2016"
    index = 0
    for split, prefix in (("training", "ADE_train"), ("validation", "ADE_val")):
        (base / "images" / split).mkdir(parents=True, exist_ok=True)
        (base / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for k in range(counts[split]):
            w, h = _image_size(image_size, index)
            scene = generate_scene(_scene_rng(seed, "ade20k", index), w, h)
            image_id = f"{prefix}_{k + 1:08d}"
            _write(base / "images" / split / f"{image_id}.jpg", _jpeg_bytes(scene.rgb))
            _write(base / "annotations" / split / f"{image_id}.png", encode_png(_ade_label_map(scene)))
            _write(stage / "demo_depth" / "ade20k" / f"{image_id}.npy", _npy_bytes(scene.depth))
            m.image_ids["ade20k"].append(image_id)
            m.image_splits["ade20k"][image_id] = split
            m.image_sizes["ade20k"][image_id] = (w, h)
            index += 1
            progress.update(1)
    m.image_counts["ade20k"] = counts
    m.files["ade20k_root"] = "ADEChallengeData2016"


# ----------------------------------------------------------------------------- LVIS


def _lvis_categories(train_anns: list[dict]) -> list[dict]:
    image_sets: dict[int, set] = {}
    instance_counts: dict[int, int] = {}
    for a in train_anns:
        image_sets.setdefault(a["category_id"], set()).add(a["image_id"])
        instance_counts[a["category_id"]] = instance_counts.get(a["category_id"], 0) + 1
    cats = []
    for info in SCENE_CATEGORY_INFO.values():
        cats.append({"synset": info.synset, "synonyms": list(info.synonyms), "def": info.definition,
                     "name": info.lvis_name, "id": info.lvis_id, "frequency": info.frequency})
    for extra in LVIS_EXTRA_CATEGORIES:
        cats.append({"synset": extra["synset"], "synonyms": list(extra["synonyms"]), "def": extra["def"],
                     "name": extra["name"], "id": extra["id"], "frequency": extra["frequency"]})
    for c in cats:
        c["image_count"] = len(image_sets.get(c["id"], ()))
        c["instance_count"] = instance_counts.get(c["id"], 0)
    return sorted(cats, key=lambda c: c["id"])


def _coco_image_record(rng: np.random.Generator, image_id: int, folder: str, w: int, h: int) -> dict:
    lic = COCO_LICENSES[int(rng.integers(len(COCO_LICENSES)))]["id"]
    day = int(rng.integers(1, 28))
    farm = int(rng.integers(1, 10))
    return {
        "license": lic,
        "height": h,
        "width": w,
        "flickr_url": f"http://farm{farm}.staticflickr.com/{int(rng.integers(1000, 9999))}/"
        f"{int(rng.integers(10**9, 10**10))}_{int(rng.integers(16**9, 16**10)):x}_z.jpg",
        "coco_url": f"http://images.cocodataset.org/{folder}/{image_id:012d}.jpg",
        "date_captured": f"2013-11-{day:02d} {int(rng.integers(24)):02d}:{int(rng.integers(60)):02d}:"
        f"{int(rng.integers(60)):02d}",
        "id": image_id,
    }


def _write_lvis(stage: Path, n: int, seed: int, image_size, coco_ids: list[int], m: DemoManifest, progress) -> None:
    counts = _split_counts(n, {"train": 0.8, "val": 0.2}, first="train")
    all_cat_ids = [c.lvis_id for c in SCENE_CATEGORY_INFO.values()] + [e["id"] for e in LVIS_EXTRA_CATEGORIES]
    per_split: dict[str, tuple[list, list]] = {}
    ann_id = _FIRST_LVIS_ANN_ID
    index = 0
    for split, folder in (("train", "train2017"), ("val", "val2017")):
        images, anns = [], []
        (stage / "coco" / folder).mkdir(parents=True, exist_ok=True)
        for _ in range(counts[split]):
            w, h = _image_size(image_size, index)
            rng = _scene_rng(seed, "lvis", index)
            scene = generate_scene(rng, w, h)
            image_id = coco_ids[index]
            _write(stage / "coco" / folder / f"{image_id:012d}.jpg", _jpeg_bytes(scene.rgb))
            _write(stage / "demo_depth" / "lvis" / f"{image_id}.npy", _npy_bytes(scene.depth))

            present = sorted({SCENE_CATEGORY_INFO[o.category].lvis_id for o in scene.objects})
            drop_index = None
            not_exhaustive: list[int] = []
            if present and rng.random() < 0.3:
                # LVIS marks a category "not exhaustive" when some of its instances are not
                # annotated; mimic that truthfully by leaving one instance out if there are two.
                cat = present[int(rng.integers(len(present)))]
                not_exhaustive = [cat]
                same = [o.object_index for o in scene.objects
                        if SCENE_CATEGORY_INFO[o.category].lvis_id == cat]
                if len(same) >= 2:
                    drop_index = same[-1]
            absent = [c for c in all_cat_ids if c not in present]
            k = int(rng.integers(1, min(4, len(absent)) + 1))
            negatives = sorted(int(c) for c in rng.choice(absent, size=k, replace=False))

            record = _coco_image_record(rng, image_id, folder, w, h)
            record["neg_category_ids"] = negatives
            record["not_exhaustive_category_ids"] = not_exhaustive
            images.append(record)
            for obj in scene.objects:
                if obj.object_index == drop_index:
                    continue
                anns.append({
                    "area": float(obj.area),
                    "id": ann_id,
                    "segmentation": _polygons(obj.mask),
                    "image_id": image_id,
                    "bbox": _bbox(obj.bbox_xywh),
                    "category_id": SCENE_CATEGORY_INFO[obj.category].lvis_id,
                })
                ann_id += 1
            sid = str(image_id)
            m.image_ids["lvis"].append(sid)
            m.image_splits["lvis"][sid] = split
            m.image_sizes["lvis"][sid] = (w, h)
            index += 1
            progress.update(1)
        per_split[split] = (images, anns)

    categories = _lvis_categories(per_split["train"][1])
    for split, (images, anns) in per_split.items():
        doc = {
            "info": {
                "description": "LVIS v1 format, perception-tokens procedural demo data",
                "url": "https://www.lvisdataset.org",
                "version": "1.0",
                "year": 2020,
                "contributor": "perception-tokens demo generator",
                "date_created": "2020-01-28 00:00:00.000000",
            },
            "licenses": [dict(x) for x in COCO_LICENSES],
            "images": images,
            "annotations": anns,
            "categories": categories,
        }
        path = stage / "lvis" / f"lvis_v1_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(doc), fsync=False)
        m.annotation_counts.setdefault("lvis", {})[split] = len(anns)
        m.files[f"lvis_{split}_json"] = f"lvis/lvis_v1_{split}.json"
    m.image_counts["lvis"] = counts
    m.files["lvis_image_root"] = "coco"


# ----------------------------------------------------------------------------- RefCOCO


def _write_refcoco(stage: Path, n: int, seed: int, image_size, coco_ids: list[int], m: DemoManifest, progress) -> None:
    # UNC splits are by image; testA/testB are people/objects in the real set, here just
    # two more held-out image groups.
    counts = _split_counts(n, {"train": 0.7, "val": 0.1, "testA": 0.1, "testB": 0.1}, first="train")
    split_of_index = [s for s, k in counts.items() for _ in range(k)]
    images, anns, refs = [], [], []
    ann_id, ref_id, sent_id = _FIRST_REFCOCO_ANN_ID, 0, 0
    (stage / "coco" / "train2014").mkdir(parents=True, exist_ok=True)
    ref_counts = {s: 0 for s in counts}
    sent_counts = {s: 0 for s in counts}
    for index in range(n):
        split = split_of_index[index]
        w, h = _image_size(image_size, index)
        rng = _scene_rng(seed, "refcoco", index)
        scene = generate_scene(rng, w, h)
        image_id = coco_ids[index]
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        _write(stage / "coco" / "train2014" / file_name, _jpeg_bytes(scene.rgb))
        _write(stage / "demo_depth" / "refcoco" / f"{image_id}.npy", _npy_bytes(scene.depth))
        record = _coco_image_record(rng, image_id, "train2014", w, h)
        record["file_name"] = file_name
        record["coco_url"] = f"http://mscoco.org/images/{image_id}"
        images.append({k: record[k] for k in ("license", "file_name", "coco_url", "height", "width",
                                              "date_captured", "flickr_url", "id")})
        for obj in scene.objects:
            info = SCENE_CATEGORY_INFO[obj.category]
            anns.append({
                "segmentation": _polygons(obj.mask),
                "area": float(obj.area),
                "iscrowd": 0,
                "image_id": image_id,
                "bbox": _bbox(obj.bbox_xywh),
                "category_id": info.coco_id,
                "id": ann_id,
            })
            sentences = []
            for raw in referring_expressions(obj, scene.objects, rng):
                tokens = tokenize(raw)
                sentences.append({"tokens": tokens, "raw": raw, "sent_id": sent_id, "sent": " ".join(tokens)})
                sent_id += 1
            refs.append({
                "sent_ids": [s["sent_id"] for s in sentences],
                "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                "ann_id": ann_id,
                "ref_id": ref_id,
                "image_id": image_id,
                "split": split,
                "sentences": sentences,
                "category_id": info.coco_id,
            })
            ref_counts[split] += 1
            sent_counts[split] += len(sentences)
            ann_id += 1
            ref_id += 1
        sid = str(image_id)
        m.image_ids["refcoco"].append(sid)
        m.image_splits["refcoco"][sid] = split
        m.image_sizes["refcoco"][sid] = (w, h)
        progress.update(1)

    categories = [{"supercategory": i.coco_supercategory, "id": i.coco_id, "name": i.coco_name}
                  for i in sorted(SCENE_CATEGORY_INFO.values(), key=lambda i: i.coco_id)]
    doc = {
        "info": {"description": "This is stable 1.0 version of the 2014 MS COCO dataset "
                                "(perception-tokens procedural demo data).",
                 "url": "http://mscoco.org", "version": "1.0", "year": 2014,
                 "contributor": "perception-tokens demo generator", "date_created": "2015-01-27 09:11:52.357475"},
        "images": images,
        "licenses": [dict(x) for x in COCO_LICENSES],
        "annotations": anns,
        "categories": categories,
    }
    (stage / "refcoco").mkdir(parents=True, exist_ok=True)
    atomic_write_text(stage / "refcoco" / "instances.json", json.dumps(doc), fsync=False)
    # Protocol 2, like the Python 2 original; plain dicts/lists/str/int only.
    _write(stage / "refcoco" / "refs(unc).p", pickle.dumps(refs, protocol=2))
    m.image_counts["refcoco"] = counts
    m.annotation_counts["refcoco"] = {"all": len(anns)}
    m.ref_counts = ref_counts
    m.sentence_counts = sent_counts
    m.files.update({
        "refcoco_instances_json": "refcoco/instances.json",
        "refcoco_refs_pickle": "refcoco/refs(unc).p",
        "refcoco_image_root": "coco/train2014",
    })


# ----------------------------------------------------------------------------- entry point


def _check_root(root: Path) -> None:
    """Refuse to replace anything that this generator did not write."""
    if (root / MANIFEST_NAME).is_file():
        return
    clashes = [d for d in _TOP_DIRS if (root / d).exists()]
    if clashes:
        raise FileExistsError(
            f"{root}: already holds {', '.join(clashes)} but no {MANIFEST_NAME}; refusing to overwrite "
            "what may be real data (use an empty directory for the demo datasets)"
        )


def write_demo_datasets(
    root: str | os.PathLike,
    *,
    n_ade20k: int = 60,
    n_lvis: int = 60,
    n_refcoco: int = 40,
    seed: int = 0,
    image_size: tuple[int, int] = (320, 240),
    show_progress: bool = False,
) -> DemoManifest:
    """Generate demo ADE20K / LVIS v1 / RefCOCO datasets (plus exact depth) under ``root``.

    ``image_size`` is (width, height); every 4th image is portrait (height, width). The
    returned :class:`DemoManifest` (also written to ``root/demo_manifest.json``) lists
    every image id, split, size and annotation count.
    """
    for name, value in (("n_ade20k", n_ade20k), ("n_lvis", n_lvis), ("n_refcoco", n_refcoco)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    width, height = (int(v) for v in image_size)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _check_root(root)
    stage = root / f".demo-staging-{os.getpid()}"
    trash = root / f".demo-old-{os.getpid()}"
    for d in (stage, trash):
        if d.exists():
            shutil.rmtree(d)
    stage.mkdir()

    m = DemoManifest(root=str(root), seed=seed, image_size=(width, height))
    for ds in DEMO_DATASETS:
        m.image_ids[ds] = []
        m.image_splits[ds] = {}
        m.image_sizes[ds] = {}
        (stage / "demo_depth" / ds).mkdir(parents=True)
    # One pool of COCO image ids so LVIS and RefCOCO never share an id for different scenes.
    id_rng = _scene_rng(seed, "ids", 0)
    coco_ids = [int(i) + 1 for i in id_rng.choice(581_929, size=n_lvis + n_refcoco, replace=False)]
    try:
        with tqdm(total=n_ade20k + n_lvis + n_refcoco, desc="demo scenes", disable=not show_progress) as progress:
            _write_ade20k(stage, n_ade20k, seed, (width, height), m, progress)
            _write_lvis(stage, n_lvis, seed, (width, height), coco_ids[:n_lvis], m, progress)
            _write_refcoco(stage, n_refcoco, seed, (width, height), coco_ids[n_lvis:], m, progress)
        # swap the finished trees into place
        trash.mkdir()
        for d in _TOP_DIRS:
            if (root / d).exists():
                os.replace(root / d, trash / d)
            if (stage / d).exists():
                os.replace(stage / d, root / d)
        m.files["manifest"] = MANIFEST_NAME
        manifest = m.to_dict()
        manifest["root"] = "."  # keep the file relocatable (and byte-identical across roots)
        atomic_write_text(root / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)
    return m
