"""Depth maps as uint8 PNG bytes: min-max normalisation, lossless encoding, decoding.

numpy and OpenCV only, no torch: the Dagster definitions, the curriculum and the checks read
depth PNGs, and importing this must not cost the seconds that torch and transformers take
(``perception_tokens.depth.preprocess`` re-exports these for the batched model side).
"""

from __future__ import annotations

import cv2
import numpy as np


def normalize_depth(raw: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Per-image min-max of a raw map to uint8: ``(map, raw_min, raw_max)``.

    Same arithmetic as the reference (scale to [0, 255], then truncate), so the largest
    value maps to 255 and the smallest to 0. A constant map gives zeros. Non-finite values
    raise ValueError: a NaN would otherwise turn the whole map into garbage silently.
    """
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.size == 0:
        raise ValueError(f"depth map must be a non-empty 2-D array, got shape {raw.shape}")
    if not np.isfinite(raw).all():
        bad = int((~np.isfinite(raw)).sum())
        raise ValueError(f"depth map has {bad} non-finite value(s) (NaN or inf)")
    values = raw.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(raw.shape, dtype=np.uint8), low, high
    scaled = (values - low) / (high - low) * 255.0
    return scaled.astype(np.uint8), low, high


def encode_png(depth_u8: np.ndarray) -> bytes:
    """Lossless PNG of a uint8 HxW map, or of HxWx3 equal channels (run.py --grayscale);
    deterministic bytes for the same input."""
    three_equal = depth_u8.ndim == 3 and depth_u8.shape[2] == 3
    if depth_u8.dtype != np.uint8 or not (depth_u8.ndim == 2 or three_equal):
        raise ValueError(f"expected a uint8 HxW or HxWx3 map, got {depth_u8.dtype} {depth_u8.shape}")
    if three_equal and not ((depth_u8[..., 0] == depth_u8[..., 1]).all() and (depth_u8[..., 0] == depth_u8[..., 2]).all()):
        raise ValueError("a 3-channel depth map must have three equal channels")
    ok, buffer = cv2.imencode(".png", depth_u8)
    if not ok:
        raise RuntimeError("cv2.imencode failed to write a PNG")
    return buffer.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 HxW map. A 3-channel PNG (run.py --grayscale) gives channel 0,
    as the reference VQ-VAE reads it (the channels are equal)."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("bytes are not a decodable PNG")
    if image.ndim == 3:
        return np.ascontiguousarray(image[..., 0])
    return image
