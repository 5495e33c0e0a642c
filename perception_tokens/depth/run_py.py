"""Input and output handling of the official Depth Anything V1 ``run.py --grayscale``.

Aurora made its pseudo-depth with ``python run.py --encoder vits --img-path ADE20k
--outdir ADE_depth --pred-only --grayscale`` (Aurora-perception ``README.md:40-43``).
What that does to each image (LiheYoung/Depth-Anything ``run.py:39-91``,
``depth_anything/util/transform.py:100-237``):

1. RGB / 255 in float64; resize keeping the aspect ratio so that the *short* side is at
   least 518 and both sides are multiples of 14 (``Resize(keep_aspect_ratio=True,
   ensure_multiple_of=14, resize_method='lower_bound')``), bicubic (cv2.INTER_CUBIC);
2. ImageNet mean/std in float64, then CHW float32;
3. the network's (H', W') output back to the original (H, W), bilinear with
   ``align_corners=False``;
4. per-image min-max in float32: ``(d - min) / (max - min) * 255``, truncated to uint8;
5. ``--grayscale``: the map repeated into three equal channels, written as PNG.

The project's own handling (``preprocess.py``: fixed square input so images share a
batch, corners aligned on the way back, float64 min-max, one channel) stays the default
outside the ``aurora`` preset; ``ImageFormat`` names the two output conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from perception_tokens.depth.architectures import PATCH_SIZE
from perception_tokens.depth.preprocess import IMAGENET_MEAN, IMAGENET_STD, encode_png, normalize_depth, rgb_problem

RUN_PY_MIN_SIDE = 518  # Resize(width=518, height=518, ...) in run.py:40-48


def lower_bound_size(height: int, width: int, min_side: int = RUN_PY_MIN_SIDE,
                     multiple: int = PATCH_SIZE) -> tuple[int, int]:
    """(new_height, new_width) of the official lower-bound resize.

    Both sides are scaled by the larger of ``min_side / height`` and ``min_side / width``
    (so the short side reaches ``min_side``), rounded half-to-even to a multiple of
    ``multiple``, and rounded up instead when rounding would fall below ``min_side``.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    scale = max(min_side / height, min_side / width)

    def constrain(x: float) -> int:
        y = int(np.round(x / multiple) * multiple)
        if y < min_side:
            y = int(np.ceil(x / multiple) * multiple)
        return y

    return constrain(scale * height), constrain(scale * width)


def preprocess_keep_aspect(image: np.ndarray, min_side: int = RUN_PY_MIN_SIDE) -> np.ndarray:
    """One RGB uint8 image -> normalised float32 CHW array at ``lower_bound_size``, computed
    in float64 up to the final cast as run.py does."""
    problem = rgb_problem(image)
    if problem:
        raise ValueError(problem)
    new_height, new_width = lower_bound_size(image.shape[0], image.shape[1], min_side)
    scaled = image / 255.0  # float64, as cv2.cvtColor(...) / 255.0
    resized = cv2.resize(scaled, (new_width, new_height), interpolation=cv2.INTER_CUBIC)
    normalised = (resized - IMAGENET_MEAN.astype(np.float64)) / IMAGENET_STD.astype(np.float64)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)).astype(np.float32)


def resize_back(prediction: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """One (H', W') prediction -> float32 (H, W) map, bilinear without aligned corners."""
    if prediction.ndim != 2:
        raise ValueError(f"expected one (H, W) prediction, got shape {tuple(prediction.shape)}")
    resized = F.interpolate(prediction.float()[None, None], size, mode="bilinear", align_corners=False)
    return resized[0, 0].cpu().numpy()


def minmax_uint8_float32(raw: np.ndarray) -> tuple[np.ndarray, float, float]:
    """run.py's min-max to uint8 in float32: ``(map, raw_min, raw_max)``.

    Same rejections as ``normalize_depth`` (non-2-D, empty, non-finite); a constant map
    gives zeros (run.py would divide by zero).
    """
    checked, low, high = normalize_depth(raw)  # validation and the constant case
    if high <= low:
        return checked, low, high
    depth = np.asarray(raw, dtype=np.float32)
    lo, hi = depth.min(), depth.max()
    scaled = (depth - lo) / (hi - lo) * np.float32(255.0)
    return scaled.astype(np.uint8), float(lo), float(hi)


@dataclass(frozen=True)
class ImageFormat:
    """How a raw map becomes the stored PNG: min-max arithmetic and channel count."""

    name: str
    minmax_float32: bool
    channels: int

    def to_uint8(self, raw: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The uint8 HxW map this format stores for ``raw`` (what decode_png gives back from
        its PNG), with the raw range it spans."""
        return minmax_uint8_float32(raw) if self.minmax_float32 else normalize_depth(raw)

    def to_png(self, raw: np.ndarray) -> tuple[bytes, float, float]:
        """PNG bytes of ``raw`` in this format, with the raw range it spans."""
        depth, low, high = self.to_uint8(raw)
        if self.channels == 3:
            depth = np.repeat(depth[..., None], 3, axis=-1)  # run.py --grayscale
        return encode_png(depth), low, high


PROJECT_FORMAT = ImageFormat("project", minmax_float32=False, channels=1)
RUN_PY_FORMAT = ImageFormat("run_py_grayscale", minmax_float32=True, channels=3)
