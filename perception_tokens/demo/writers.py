"""Write demo scenes to disk in the official layouts of ADE20K, LVIS v1 and RefCOCO.

Layout under ``root`` (same as the real downloads, so the readers cannot tell):

    ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_%08d.jpg
    ADEChallengeData2016/annotations/{training,validation}/ADE_{train,val}_%08d.png
    lvis/lvis_v1_train.json, lvis/lvis_v1_val.json
    coco/train2017/%012d.jpg, coco/val2017/%012d.jpg        (LVIS images)
    coco/train2014/COCO_train2014_%012d.jpg                 (RefCOCO images)
    refcoco/instances.json, refcoco/refs(unc).p
    refcoco+/instances.json, refcoco+/refs(unc).p
    refcocog/instances.json, refcocog/refs(umd).p, refcocog/refs(google).p
    demo_depth/<dataset>/<image_id>.npy                    (exact metric depth, float32)
    demo_manifest.json                                      (what was written; the truth)

Everything is a pure function of ``seed`` (same bytes on every run). The datasets are
built in a staging folder and then moved into place, so a reader never sees a half
written tree and files left over from an earlier, larger demo do not linger.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..images import encode_png
from ..paths import atomic_write_text
from .catalog import ADE_CEILING, ADE_FLOOR, ADE_OTHER, ADE_WALL, SCENE_CATEGORY_INFO
from .encoding import draw_scene, scene_rng, split_counts, write_file, write_scene
from .lvis_writer import write_lvis
from .manifest import DEMO_DATASETS, MANIFEST_NAME, DemoManifest
from .refcoco_writer import write_refcoco
from .scenes import SURFACE_CEILING, SURFACE_FLOOR, SURFACE_WALL, Scene

__all__ = ["write_demo_datasets"]

_TOP_DIRS = ("ADEChallengeData2016", "lvis", "coco", "refcoco", "refcoco+", "refcocog", "demo_depth")


# ----------------------------------------------------------------------------- ADE20K


def _ade_label_map(scene: Scene) -> np.ndarray:
    labels = np.full(scene.surface.shape, ADE_OTHER, dtype=np.uint8)
    labels[scene.surface == SURFACE_FLOOR] = ADE_FLOOR
    labels[scene.surface == SURFACE_WALL] = ADE_WALL
    labels[scene.surface == SURFACE_CEILING] = ADE_CEILING
    for obj in scene.objects:
        labels[obj.mask] = SCENE_CATEGORY_INFO[obj.category].ade_index
    return labels


def write_ade20k(stage: Path, n: int, seed: int, image_size, manifest: DemoManifest, progress) -> None:
    counts = split_counts(n, {"training": 0.8, "validation": 0.2}, first="training")
    base = stage / "ADEChallengeData2016"
    index = 0
    for split, prefix in (("training", "ADE_train"), ("validation", "ADE_val")):
        (base / "images" / split).mkdir(parents=True, exist_ok=True)
        (base / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for k in range(counts[split]):
            _, scene, (w, h) = draw_scene(seed, "ade20k", index, image_size)
            image_id = f"{prefix}_{k + 1:08d}"
            write_scene(stage, "ade20k", base / "images" / split / f"{image_id}.jpg", image_id, scene)
            write_file(base / "annotations" / split / f"{image_id}.png", encode_png(_ade_label_map(scene)))
            manifest.image_ids["ade20k"].append(image_id)
            manifest.image_splits["ade20k"][image_id] = split
            manifest.image_sizes["ade20k"][image_id] = (w, h)
            index += 1
            progress.update(1)
    manifest.image_counts["ade20k"] = counts
    manifest.files["ade20k_root"] = "ADEChallengeData2016"



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


def demo_settings(*, n_ade20k: int, n_lvis: int, n_refcoco: int, seed: int, width: int, height: int) -> dict[str, int]:
    """The settings a demo world is generated from, as its manifest records them."""
    return {"n_ade20k": int(n_ade20k), "n_lvis": int(n_lvis), "n_refcoco": int(n_refcoco), "seed": int(seed),
            "width": int(width), "height": int(height)}


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

    manifest = DemoManifest(root=str(root), seed=seed, image_size=(width, height), settings=demo_settings(
        n_ade20k=n_ade20k, n_lvis=n_lvis, n_refcoco=n_refcoco, seed=seed, width=width, height=height))
    for dataset in DEMO_DATASETS:
        manifest.image_ids[dataset] = []
        manifest.image_splits[dataset] = {}
        manifest.image_sizes[dataset] = {}
        (stage / "demo_depth" / dataset).mkdir(parents=True)
    # One pool of COCO image ids so LVIS and RefCOCO never share an id for different scenes.
    id_rng = scene_rng(seed, "ids", 0)
    coco_ids = [int(i) + 1 for i in id_rng.choice(581_929, size=n_lvis + n_refcoco, replace=False)]
    try:
        with tqdm(total=n_ade20k + n_lvis + n_refcoco, desc="demo scenes", disable=not show_progress) as progress:
            write_ade20k(stage, n_ade20k, seed, (width, height), manifest, progress)
            write_lvis(stage, n_lvis, seed, (width, height), coco_ids[:n_lvis], manifest, progress)
            write_refcoco(stage, n_refcoco, seed, (width, height), coco_ids[n_lvis:], manifest, progress)
        # swap the finished trees into place
        trash.mkdir()
        for d in _TOP_DIRS:
            if (root / d).exists():
                os.replace(root / d, trash / d)
            if (stage / d).exists():
                os.replace(stage / d, root / d)
        manifest.files["manifest"] = MANIFEST_NAME
        record = manifest.to_dict()
        record["root"] = "."  # keep the file relocatable (and byte-identical across roots)
        atomic_write_text(root / MANIFEST_NAME, json.dumps(record, indent=1, sort_keys=True))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)
    return manifest
