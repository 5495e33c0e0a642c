"""How good is a depth tokenizer: reconstruction error, codebook use, and relative-depth answers.

Depth values are uint8 maps in Depth Anything's convention (relative inverse depth,
larger = nearer). Error metrics that divide by the true value (abs_rel, delta1) would
divide by zero at value 0, so every metric here is computed on the shifted scale

    d = (v + 1) / 256,   v in 0..255  ->  d in (0, 1]   (1/256 .. 1)

which is strictly positive and keeps differences proportional to uint8 differences
(RMSE on this scale = RMSE in uint8 units / 256). Per-image metrics are averaged over
images (each image weighs the same, whatever its size).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from training.vqvae.data import as_depth_map, batched, model_input, tensor_to_depth_uint8
from training.vqvae.model import DepthVQVAE

Point = tuple[int, int]  # (row y, column x)


# ----------------------------------------------------------------------------- reconstruction


def to_positive_scale(depth: np.ndarray) -> np.ndarray:
    """uint8 -> float64 on (v + 1) / 256, in (0, 1]: safe to divide by."""
    return (depth.astype(np.float64) + 1.0) / 256.0


def depth_errors(depth_true: np.ndarray, depth_pred: np.ndarray) -> dict[str, float]:
    """abs_rel, rmse and delta1 of one uint8 map pair of the same shape, on the (v+1)/256 scale.

    abs_rel = mean |p - t| / t;  rmse = sqrt(mean (p - t)^2);
    delta1 = fraction of pixels with max(p / t, t / p) < 1.25.
    """
    t = to_positive_scale(as_depth_map(depth_true, "true depth"))
    p = to_positive_scale(as_depth_map(depth_pred, "predicted depth"))
    if t.shape != p.shape:
        raise ValueError(f"depth maps differ in shape: true {t.shape} vs predicted {p.shape}")
    ratio = np.maximum(p / t, t / p)
    return {
        "abs_rel": float(np.mean(np.abs(p - t) / t)),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "delta1": float(np.mean(ratio < 1.25)),
    }


# ----------------------------------------------------------------------------- codebook


def codebook_stats(code_counts: np.ndarray | torch.Tensor | Sequence[int]) -> dict[str, float]:
    """From per-code counts: ``usage`` (number of distinct codes used) and ``perplexity``
    (exp of the entropy of the code distribution; = number of codes if all used equally)."""
    counts = np.asarray(code_counts.cpu() if isinstance(code_counts, torch.Tensor) else code_counts, dtype=np.float64)
    if counts.ndim != 1:
        raise ValueError(f"code_counts must be 1-D, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("code_counts must be non-negative")
    total = counts.sum()
    if total <= 0:
        return {"usage": 0, "perplexity": 0.0}
    p = counts[counts > 0] / total
    return {"usage": int((counts > 0).sum()), "perplexity": float(math.exp(-(p * np.log(p)).sum()))}


class CodeUsage:
    """Accumulates code counts over many batches, so usage / perplexity describe a whole epoch
    (or data set), not the average of per-batch figures."""

    def __init__(self, codebook_size: int) -> None:
        self.counts = np.zeros(codebook_size, dtype=np.int64)

    def update(self, codes: torch.Tensor | np.ndarray) -> None:
        flat = codes.reshape(-1).cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes).reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= len(self.counts)):
            raise ValueError(f"codes outside 0..{len(self.counts) - 1}")
        self.counts += np.bincount(flat.astype(np.int64), minlength=len(self.counts))

    def stats(self) -> dict[str, float]:
        return codebook_stats(self.counts)


# ----------------------------------------------------------------------------- closest point


def sample_points(
    depth: np.ndarray,
    rng: np.random.Generator,
    n_points: int | None = None,
    n_range: tuple[int, int] = (2, 5),
    min_gap: int = 16,
    border_frac: float = 0.1,
    max_tries: int = 256,
) -> list[Point]:
    """Pick points (y, x) whose true depths differ pairwise by at least ``min_gap`` (uint8 units).

    Points stay ``border_frac`` of the size away from the borders. The number wanted is
    ``n_points`` or drawn from ``n_range`` (inclusive). On a map without enough distinct
    depths fewer points come back (possibly 0 or 1); callers skip such images.
    """
    depth = as_depth_map(depth)
    h, w = depth.shape
    want = n_points if n_points is not None else int(rng.integers(n_range[0], n_range[1] + 1))
    y0, y1 = int(h * border_frac), max(int(h * border_frac) + 1, h - int(h * border_frac))
    x0, x1 = int(w * border_frac), max(int(w * border_frac) + 1, w - int(w * border_frac))
    ys = rng.integers(y0, y1, size=max_tries)
    xs = rng.integers(x0, x1, size=max_tries)
    chosen: list[Point] = []
    values: list[int] = []
    for y, x in zip(ys, xs):
        v = int(depth[y, x])
        if all(abs(v - u) >= min_gap for u in values):
            chosen.append((int(y), int(x)))
            values.append(v)
            if len(chosen) == want:
                break
    return chosen


def _unique_argmax(values: Sequence[int]) -> int | None:
    best = max(values)
    hits = [i for i, v in enumerate(values) if v == best]
    return hits[0] if len(hits) == 1 else None


def closest_point_agreement(
    depth_true: Sequence[np.ndarray],
    depth_recon: Sequence[np.ndarray],
    points_list: Sequence[Sequence[Point]],
) -> float:
    """Fraction of images where "which point is closest to the camera?" gets the same answer
    from the reconstruction as from the input.

    Closest = largest value (inverse depth). Images with fewer than 2 points are skipped;
    returns NaN when none is left. A tie among the true values at the maximum raises
    ValueError (sample points with a depth gap); a tie in the reconstruction counts as a
    disagreement (the reconstruction cannot answer).
    """
    if not len(depth_true) == len(depth_recon) == len(points_list):
        raise ValueError(
            f"need one reconstruction and one point list per map: {len(depth_true)} maps, "
            f"{len(depth_recon)} reconstructions, {len(points_list)} point lists"
        )
    scored = agreed = 0
    for i, (t, r, pts) in enumerate(zip(depth_true, depth_recon, points_list)):
        if len(pts) < 2:
            continue
        if t.shape != r.shape:
            raise ValueError(f"image {i}: true depth {t.shape} and reconstruction {r.shape} differ in shape")
        truth = _unique_argmax([int(t[y, x]) for y, x in pts])
        if truth is None:
            raise ValueError(f"image {i}: points {list(pts)} tie for the nearest true depth")
        answer = _unique_argmax([int(r[y, x]) for y, x in pts])
        scored += 1
        agreed += int(answer == truth)
    return agreed / scored if scored else float("nan")


# ----------------------------------------------------------------------------- whole model


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def reconstruct(model: DepthVQVAE, maps: Sequence[np.ndarray]) -> tuple[list[np.ndarray], torch.Tensor]:
    """uint8 maps -> (uint8 reconstructions at each map's own size, codes [B, g, g]).

    Runs encode -> decode_codes in eval mode under inference_mode (no codebook updates).
    """
    maps = [as_depth_map(m, f"depth map #{i}") for i, m in enumerate(maps)]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            x = model_input(maps, model.config).to(_device_of(model))
            codes = model.encode(x)
            recon = model.decode_codes(codes)
    finally:
        model.train(was_training)
    return tensor_to_depth_uint8(recon, [m.shape for m in maps]), codes.cpu()


def evaluate_vqvae(
    model: DepthVQVAE,
    maps: Iterable[np.ndarray],
    batch_size: int = 32,
    seed: int = 0,
    *,
    points_range: tuple[int, int] = (2, 5),
    min_gap: int = 16,
    progress: bool = False,
) -> dict[str, float]:
    """Reconstruction and tokenization quality over a stream of uint8 depth maps.

    Reconstructions are resized back to each map's original size and compared with the
    original (end to end, as the tokens are used). Returns abs_rel, rmse, delta1 (means
    over images, (v+1)/256 scale), usage and perplexity (code counts over all images),
    closest_point_agreement (2-5 seeded points per image, NaN if no image had 2 distinct
    depths), n_images and n_point_images (images that had >= 2 points).
    """
    rng = np.random.default_rng(seed)
    usage = CodeUsage(model.config.codebook_size)
    sums = {"abs_rel": 0.0, "rmse": 0.0, "delta1": 0.0}
    n_images = scored = agreed = 0
    for chunk in tqdm(batched(maps, batch_size), desc="evaluate vqvae", unit="batch", disable=not progress):
        recon, codes = reconstruct(model, chunk)
        usage.update(codes)
        for t, r in zip(chunk, recon):
            t = as_depth_map(t)
            for k, v in depth_errors(t, r).items():
                sums[k] += v
            pts = sample_points(t, rng, n_range=points_range, min_gap=min_gap)
            if len(pts) >= 2:
                scored += 1
                agreed += int(closest_point_agreement([t], [r], [pts]) == 1.0)
            n_images += 1
    if n_images == 0:
        raise ValueError("evaluate_vqvae: no depth maps given")
    result: dict[str, float] = {k: v / n_images for k, v in sums.items()}
    result.update(usage.stats())
    result["closest_point_agreement"] = agreed / scored if scored else float("nan")
    result["n_images"] = n_images
    result["n_point_images"] = scored
    return result


def reconstruction_examples(
    model: DepthVQVAE, maps: Iterable[np.ndarray], n: int = 4
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The first ``n`` maps as (input, reconstruction, |error|) uint8 triples, original size."""
    chosen = [as_depth_map(m, f"depth map #{i}") for i, m in zip(range(n), maps)]
    if not chosen:
        return []
    recon, _ = reconstruct(model, chosen)
    return [
        (t, r, np.abs(t.astype(np.int16) - r.astype(np.int16)).astype(np.uint8)) for t, r in zip(chosen, recon)
    ]


def examples_to_grid(examples: Sequence[tuple[np.ndarray, ...]], size: int = 128, gap: int = 4) -> np.ndarray:
    """Tile example tuples into one uint8 picture: one row per example, one column per map."""
    import cv2

    if not examples:
        raise ValueError("examples_to_grid: no examples")
    cols = len(examples[0])
    h = len(examples) * size + (len(examples) - 1) * gap
    w = cols * size + (cols - 1) * gap
    canvas = np.full((h, w), 255, dtype=np.uint8)
    for i, row in enumerate(examples):
        for j, m in enumerate(row):
            tile = cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA)
            y, x = i * (size + gap), j * (size + gap)
            canvas[y : y + size, x : x + size] = tile
    return canvas
