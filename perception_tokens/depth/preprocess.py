"""Depth Anything's input and output handling, batched.

Input: RGB uint8 -> float in [0, 1] -> bicubic resize to a fixed square ``input_size``
(a multiple of the 14-pixel patch) -> ImageNet mean/std -> NCHW. The reference resizes
keeping the aspect ratio, which makes every image a different shape; a fixed square lets
images share a batch. Padding instead would be wrong: padded borders read as "near".

Output: the prediction is resized back to the original image size (bilinear, corners
aligned as in the reference ``infer_image``), then per-image min-max to uint8 exactly like
the reference ``run.py --grayscale --pred-only``, and PNG-encoded.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from perception_tokens.depth.architectures import PATCH_SIZE
# the PNG codec has no torch in it; it lives apart so reading a depth PNG does not import torch
from perception_tokens.depth.png_codec import decode_png, encode_png, normalize_depth  # noqa: F401 (re-exported)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def check_input_size(input_size: int) -> int:
    """``input_size`` if it is a positive multiple of the patch size, else ValueError."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size <= 0 or input_size % PATCH_SIZE:
        raise ValueError(f"input_size must be a positive multiple of {PATCH_SIZE} (e.g. 518), got {input_size!r}")
    return input_size


def rgb_problem(image: object) -> str | None:
    """Why ``image`` is not an HxWx3 uint8 RGB array, or None if it is."""
    if not isinstance(image, np.ndarray):
        return f"image is {type(image).__name__}, expected numpy.ndarray"
    if image.dtype != np.uint8:
        return f"image dtype is {image.dtype}, expected uint8"
    if image.ndim != 3 or image.shape[2] != 3:
        return f"image shape is {image.shape}, expected (H, W, 3) RGB"
    if image.shape[0] < 1 or image.shape[1] < 1:
        return f"image is empty: shape {image.shape}"
    return None


def preprocess_image(image: np.ndarray, input_size: int) -> np.ndarray:
    """One RGB uint8 image -> normalised float32 CHW array of size ``input_size`` squared."""
    problem = rgb_problem(image)
    if problem:
        raise ValueError(problem)
    scaled = image.astype(np.float32) / 255.0
    resized = cv2.resize(scaled, (input_size, input_size), interpolation=cv2.INTER_CUBIC)
    normalised = (resized - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def preprocess_batch(images: Sequence[np.ndarray], input_size: int) -> torch.Tensor:
    """RGB uint8 images (any sizes) -> float32 tensor (N, 3, S, S) in channels_last layout."""
    check_input_size(input_size)
    if not images:
        raise ValueError("preprocess_batch needs at least one image")
    batch = torch.from_numpy(np.stack([preprocess_image(im, input_size) for im in images]))
    return batch.contiguous(memory_format=torch.channels_last)


def resize_predictions(predictions: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """(N, S, S) predictions -> float32 numpy maps at each original (height, width)."""
    if predictions.ndim == 4 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.ndim != 3 or predictions.shape[0] != len(sizes):
        raise ValueError(f"expected predictions of shape (N, H, W) with N={len(sizes)}, got {tuple(predictions.shape)}")
    out = []
    for prediction, (height, width) in zip(predictions.float(), sizes):
        resized = F.interpolate(prediction[None, None], (height, width), mode="bilinear", align_corners=True)
        out.append(resized[0, 0].cpu().numpy().astype(np.float32, copy=False))
    return out
