"""Depth teachers: pseudo-depth labels from Depth Anything (or demo ground truth).

    teacher = build_teacher("depth_anything_hub", checkpoint="depth_anything_v2_vits.pth")
    for result in label_images(teacher, items, batch_size=16):
        ...  # result.depth_png: uint8 grayscale PNG, larger = nearer
"""

from perception_tokens.depth.architectures import (
    ENCODERS,
    REAL_ENCODERS,
    build_depth_anything,
    build_tiny_depth_anything,
    depth_anything_config,
)
from perception_tokens.depth.checkpoints import (
    CheckpointError,
    official_to_legacy_keys,
    read_checkpoint,
    save_pretrained_dir,
    save_tiny_for_hub,
    to_model_keys,
    to_official_keys,
)
from perception_tokens.depth.dpt_dinov2 import DepthAnythingV1, build_dpt_dinov2, build_tiny_dpt_dinov2, parameter_count
from perception_tokens.depth.hub import HUB_DIR
from perception_tokens.depth.labeling import (
    DepthLabelError,
    DepthResult,
    label_images,
    label_images_one_by_one,
)
from perception_tokens.depth.preprocess import decode_png, encode_png, normalize_depth, preprocess_batch
from perception_tokens.depth.run_py import (
    PROJECT_FORMAT,
    RUN_PY_FORMAT,
    ImageFormat,
    lower_bound_size,
    minmax_uint8_float32,
    preprocess_keep_aspect,
)
from perception_tokens.depth.teachers import (
    KINDS,
    DepthAnythingTeacher,
    DepthTeacher,
    GroundTruthTeacher,
    build_teacher,
)

__all__ = [
    "PROJECT_FORMAT",
    "RUN_PY_FORMAT",
    "DepthAnythingV1",
    "ImageFormat",
    "build_dpt_dinov2",
    "build_tiny_dpt_dinov2",
    "lower_bound_size",
    "minmax_uint8_float32",
    "parameter_count",
    "preprocess_keep_aspect",
    "ENCODERS",
    "HUB_DIR",
    "KINDS",
    "REAL_ENCODERS",
    "CheckpointError",
    "DepthAnythingTeacher",
    "DepthLabelError",
    "DepthResult",
    "DepthTeacher",
    "GroundTruthTeacher",
    "build_depth_anything",
    "build_teacher",
    "build_tiny_depth_anything",
    "decode_png",
    "depth_anything_config",
    "encode_png",
    "label_images",
    "label_images_one_by_one",
    "normalize_depth",
    "official_to_legacy_keys",
    "preprocess_batch",
    "read_checkpoint",
    "save_pretrained_dir",
    "save_tiny_for_hub",
    "to_model_keys",
    "to_official_keys",
]
