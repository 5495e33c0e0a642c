"""uint8 depth maps <-> model tensors, and batching of (possibly streamed) map sequences.

Depth maps follow Depth Anything's convention: relative inverse depth min-max normalised
to uint8 (larger = nearer), any HxW. The model sees them as float [0, 1] = uint8 / 255,
resized to S x S with cv2.INTER_AREA.
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator, Sequence, TypeVar

import cv2
import numpy as np
import torch

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


def resize_depth(depth: np.ndarray, image_size: int) -> np.ndarray:
    """Resize a uint8 map to image_size x image_size with INTER_AREA (no-op when already that size)."""
    if depth.shape == (image_size, image_size):
        return depth
    return cv2.resize(depth, (image_size, image_size), interpolation=cv2.INTER_AREA)


def depth_to_tensor(maps: Iterable[np.ndarray], image_size: int) -> torch.Tensor:
    """uint8 depth maps (any HxW each) -> FloatTensor [B, 1, S, S] in [0, 1]."""
    resized = [resize_depth(as_depth_map(m, f"depth map #{i}"), image_size) for i, m in enumerate(maps)]
    if not resized:
        raise ValueError("depth_to_tensor: no depth maps given")
    batch = np.stack(resized)[:, None].astype(np.float32) / 255.0
    return torch.from_numpy(batch)


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
    maps: Iterable[np.ndarray], image_size: int, batch_size: int
) -> Iterator[tuple[list[np.ndarray], torch.Tensor]]:
    """Stream of maps -> (the batch's original maps, their [B, 1, S, S] tensor)."""
    for chunk in batched(maps, batch_size):
        yield chunk, depth_to_tensor(chunk, image_size)


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
