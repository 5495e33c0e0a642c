"""What the demo generator wrote (:class:`DemoManifest`) and where each image's exact depth lives."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..paths import safe_join

DEMO_DATASETS = ("ade20k", "lvis", "refcoco")
MANIFEST_NAME = "demo_manifest.json"
_IMAGE_ID_RE = re.compile(r"^[A-Za-z0-9_]+$")


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
    refer_ref_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # refcoco+/refcocog -> split -> refs
    files: dict[str, str] = field(default_factory=dict)  # role -> path relative to root
    # the generator's arguments (n_ade20k, n_lvis, n_refcoco, seed, width, height): a demo folder
    # made with other settings than the config's now is regenerated (pipeline_lib/demo_world.py)
    settings: dict[str, int] = field(default_factory=dict)

    @property
    def n_refs(self) -> int:
        return sum(self.ref_counts.values())

    @property
    def n_sentences(self) -> int:
        return sum(self.sentence_counts.values())

    def to_dict(self) -> dict:
        return asdict(self)


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
