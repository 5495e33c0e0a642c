"""Depth teachers: pseudo-depth labels from Depth Anything (or demo ground truth).

    teacher = build_teacher("depth_anything_hub", checkpoint="depth_anything_v2_vits.pth")
    for result in label_images(teacher, items, batch_size=16):
        ...  # result.depth_png: uint8 grayscale PNG, larger = nearer

Names are imported on first use (PEP 562): reading a depth PNG (``decode_png``) must not
import torch and transformers, which the model-side names need.
"""

from __future__ import annotations

import importlib

# name -> the module that defines it
_WHERE = {
    "ENCODERS": "perception_tokens.depth.architectures",
    "REAL_ENCODERS": "perception_tokens.depth.architectures",
    "build_depth_anything": "perception_tokens.depth.architectures",
    "build_tiny_depth_anything": "perception_tokens.depth.architectures",
    "depth_anything_config": "perception_tokens.depth.architectures",
    "CheckpointError": "perception_tokens.depth.checkpoints",
    "official_to_legacy_keys": "perception_tokens.depth.checkpoints",
    "read_checkpoint": "perception_tokens.depth.checkpoints",
    "save_pretrained_dir": "perception_tokens.depth.checkpoints",
    "save_tiny_for_hub": "perception_tokens.depth.checkpoints",
    "to_model_keys": "perception_tokens.depth.checkpoints",
    "to_official_keys": "perception_tokens.depth.checkpoints",
    "DepthAnythingV1": "perception_tokens.depth.dpt_dinov2",
    "build_dpt_dinov2": "perception_tokens.depth.dpt_dinov2",
    "build_tiny_dpt_dinov2": "perception_tokens.depth.dpt_dinov2",
    "parameter_count": "perception_tokens.depth.dpt_dinov2",
    "HUB_DIR": "perception_tokens.depth.hub",
    "DepthLabelError": "perception_tokens.depth.labeling",
    "DepthResult": "perception_tokens.depth.labeling",
    "label_images": "perception_tokens.depth.labeling",
    "label_images_one_by_one": "perception_tokens.depth.labeling",
    "decode_png": "perception_tokens.depth.png_codec",
    "encode_png": "perception_tokens.depth.png_codec",
    "normalize_depth": "perception_tokens.depth.png_codec",
    "preprocess_batch": "perception_tokens.depth.preprocess",
    "PROJECT_FORMAT": "perception_tokens.depth.run_py",
    "RUN_PY_FORMAT": "perception_tokens.depth.run_py",
    "ImageFormat": "perception_tokens.depth.run_py",
    "lower_bound_size": "perception_tokens.depth.run_py",
    "minmax_uint8_float32": "perception_tokens.depth.run_py",
    "preprocess_keep_aspect": "perception_tokens.depth.run_py",
    "KINDS": "perception_tokens.depth.teachers",
    "DepthAnythingTeacher": "perception_tokens.depth.teachers",
    "DepthTeacher": "perception_tokens.depth.teachers",
    "GroundTruthTeacher": "perception_tokens.depth.teachers",
    "build_teacher": "perception_tokens.depth.teachers",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
