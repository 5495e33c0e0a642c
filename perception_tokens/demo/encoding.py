"""How the demo writers turn scenes into files: seeds, sizes, splits, JPEG / .npy bytes and COCO fields."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..paths import atomic_write_bytes
from .catalog import COCO_LICENSES
from .scenes import Scene, generate_scene

_DATASET_CODE = {"ade20k": 1, "lvis": 2, "refcoco": 3, "refcoco+": 4, "refcocog": 5, "ids": 99}
_JPEG_QUALITY = 92


def scene_rng(seed: int, dataset: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _DATASET_CODE[dataset], index]))


def image_size_at(image_size: tuple[int, int], index: int) -> tuple[int, int]:
    w, h = image_size
    return (h, w) if index % 4 == 3 else (w, h)  # some portrait images, like real photos


def split_counts(n: int, fractions: dict[str, float], first: str) -> dict[str, int]:
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


def jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=_JPEG_QUALITY)
    return buf.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_file(path: Path, data: bytes) -> None:
    # Regenerable bulk files skip fsync; the manifest (written last) is fsynced.
    atomic_write_bytes(path, data, fsync=False)


def coco_polygons(mask: np.ndarray) -> list[list[float]]:
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


def coco_bbox(bbox_xywh: tuple[float, float, float, float]) -> list[float]:
    return [round(float(v), 2) for v in bbox_xywh]


def coco_image_record(rng: np.random.Generator, image_id: int, folder: str, w: int, h: int) -> dict:
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


def draw_scene(
    seed: int, dataset: str, index: int, image_size: tuple[int, int]
) -> tuple[np.random.Generator, Scene, tuple[int, int]]:
    """The ``index``-th scene of ``dataset``, the generator that drew it (a writer draws the
    scene's annotations from it next) and its (width, height)."""
    w, h = image_size_at(image_size, index)
    rng = scene_rng(seed, dataset, index)
    return rng, generate_scene(rng, w, h), (w, h)


def write_scene(stage: Path, dataset: str, image_path: Path, image_id: str | int, scene: Scene) -> None:
    """The scene as a JPEG at ``image_path``, its exact depth at ``demo_depth/<dataset>/<image_id>.npy``."""
    write_file(image_path, jpeg_bytes(scene.rgb))
    write_file(stage / "demo_depth" / dataset / f"{image_id}.npy", npy_bytes(scene.depth))
