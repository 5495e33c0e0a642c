"""uint8 depth maps <-> model tensors, and batching of (possibly streamed) map sequences.

Depth maps follow Depth Anything's convention: relative inverse depth min-max normalised
to uint8 (larger = nearer), any HxW. The model sees them as float [0, 1] = uint8 / 255
(torchvision's ToTensor, custom.py:40 of the reference), resized to S x S with
cv2.INTER_AREA (``resize="area"``, the project's) or PIL NEAREST (``resize="nearest"``,
the reference's ``T.Resize(crop_size, InterpolationMode.NEAREST)``, custom.py:39).
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator, Sequence, TypeVar

import cv2
import numpy as np
import torch
from PIL import Image

T = TypeVar("T")


def batched(items: Iterable[T], batch_size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``batch_size`` items (the last one may be shorter)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    it = iter(items)
    while chunk := list(islice(it, batch_size)):
        yield chunk


def as_depth_map(depth: np.ndarray, where: str = "depth map") -> np.ndarray:
    """Validate one depth map and return it as a 2-D uint8 array (HxW or HxWx1 accepted)."""
    if not isinstance(depth, np.ndarray):
        raise TypeError(f"{where}: expected a numpy uint8 array, got {type(depth).__name__}")
    if depth.dtype != np.uint8:
        raise ValueError(f"{where}: expected dtype uint8, got {depth.dtype}")
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D (HxW) grayscale map, got shape {depth.shape}")
    if depth.shape[0] < 1 or depth.shape[1] < 1:
        raise ValueError(f"{where}: empty map of shape {depth.shape}")
    return depth


def resize_depth(depth: np.ndarray, image_size: int, resize: str = "area") -> np.ndarray:
    """Resize a uint8 map to image_size x image_size (no-op when already that size).

    ``area``: cv2.INTER_AREA. ``nearest``: PIL's NEAREST on ``Image.fromarray``, which is
    what torchvision's Resize does to the reference's PIL image (the pixel picked for an
    output pixel is PIL's, not cv2's INTER_NEAREST, whose rounding differs).
    """
    if depth.shape == (image_size, image_size):
        return depth
    if resize == "nearest":
        return np.asarray(Image.fromarray(depth).resize((image_size, image_size), Image.Resampling.NEAREST))
    if resize != "area":
        raise ValueError(f"resize must be 'area' or 'nearest', got {resize!r}")
    return cv2.resize(depth, (image_size, image_size), interpolation=cv2.INTER_AREA)


def depth_to_tensor(maps: Iterable[np.ndarray], image_size: int, resize: str = "area") -> torch.Tensor:
    """uint8 depth maps (any HxW each) -> FloatTensor [B, 1, S, S] in [0, 1] (uint8 / 255)."""
    resized = [resize_depth(as_depth_map(m, f"depth map #{i}"), image_size, resize) for i, m in enumerate(maps)]
    if not resized:
        raise ValueError("depth_to_tensor: no depth maps given")
    # ToTensor: uint8 -> float32, then .div(255) (correctly rounded, as numpy's float32 division)
    batch = np.stack(resized)[:, None].astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(batch)


def model_input(maps: Iterable[np.ndarray], config) -> torch.Tensor:
    """Depth maps -> the [B, 1, S, S] tensor a model of ``config`` (a VQVAEConfig) takes."""
    return depth_to_tensor(maps, config.image_size, config.resize)


def tensor_to_depth_uint8(
    recon: torch.Tensor, sizes: Sequence[tuple[int, int]] | None = None
) -> list[np.ndarray]:
    """FloatTensor [B, 1, S, S] (nominally [0, 1]) -> list of uint8 maps.

    Values are clamped to [0, 1] and rounded. With ``sizes`` (one (H, W) per map) each map
    is resized back to its original size with bilinear interpolation.
    """
    if recon.ndim != 4 or recon.shape[1] != 1:
        raise ValueError(f"expected [B, 1, S, S], got {list(recon.shape)}")
    arr = (recon.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()[:, 0]
    if sizes is not None and len(sizes) != len(arr):
        raise ValueError(f"got {len(sizes)} sizes for {len(arr)} maps")
    out: list[np.ndarray] = []
    for i, m in enumerate(arr):
        if sizes is not None and tuple(sizes[i]) != m.shape:
            h, w = sizes[i]
            m = cv2.resize(m, (int(w), int(h)), interpolation=cv2.INTER_LINEAR)
        out.append(np.ascontiguousarray(m))
    return out


def iter_depth_batches(
    maps: Iterable[np.ndarray], image_size: int, batch_size: int, resize: str = "area"
) -> Iterator[tuple[list[np.ndarray], torch.Tensor]]:
    """Stream of maps -> (the batch's original maps, their [B, 1, S, S] tensor)."""
    for chunk in batched(maps, batch_size):
        yield chunk, depth_to_tensor(chunk, image_size, resize)


def buffered_shuffle(items: Iterable[T], buffer_size: int, rng: np.random.Generator) -> Iterator[T]:
    """Shuffle a stream with a bounded buffer (a full shuffle when the stream fits in it).

    Deterministic for a given ``rng`` state and input order.
    """
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
    buf: list[T] = []
    for item in items:
        if len(buf) < buffer_size:
            buf.append(item)
            continue
        j = int(rng.integers(len(buf)))
        yield buf[j]
        buf[j] = item
    for j in rng.permutation(len(buf)):
        yield buf[int(j)]


def permuted(items: Iterable[T], rng: np.random.Generator) -> Iterator[T]:
    """Every item once, in the order of ``rng.permutation`` over the whole sequence (the
    reference's per-epoch shuffle; holds the sequence in memory, so callers pass encoded maps)."""
    held = list(items)
    for j in rng.permutation(len(held)):
        yield held[int(j)]
