"""Procedural demo data in the real on-disk formats of ADE20K, LVIS v1 and RefCOCO.

``write_demo_datasets(root)`` fills ``root`` with small datasets that the real readers
(:mod:`perception_tokens.datasets`) load unchanged, plus exact metric depth per image so
the demo depth teacher and the depth metrics have a ground truth.
"""

from .scenes import CATEGORIES, COLORS, PlacedObject, Scene, SceneObject, generate_scene, render_layout
from .manifest import DEMO_DATASETS, MANIFEST_NAME, DemoManifest, ground_truth_depth_path, load_ground_truth_depth
from .writers import write_demo_datasets

__all__ = [
    "CATEGORIES",
    "COLORS",
    "DEMO_DATASETS",
    "MANIFEST_NAME",
    "PlacedObject",
    "DemoManifest",
    "Scene",
    "SceneObject",
    "generate_scene",
    "ground_truth_depth_path",
    "load_ground_truth_depth",
    "render_layout",
    "write_demo_datasets",
]
