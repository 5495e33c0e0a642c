"""Depth PNG files -> code records: the reference's ``get_codes.py`` as a library.

The reference (AiT/vae/get_codes.py with dataset/custom.py) reads each PNG with
``cv2.imread(path, cv2.IMREAD_UNCHANGED)[:, :, 0]`` (channel 0: blue of a colour PNG, the
value of a three-equal-channel depth PNG), resizes it with PIL NEAREST to the model size,
applies ToTensor and Normalize(0.5, 0.5), and takes ``vae(img, return_indices=True)``: 100
codes, row-major, written as ``<DEPTH_START><DEPTH_k>...<DEPTH_END>``. Here the same steps
run in batches (``DepthVQVAE.encode`` finds each nearest code in float64, so a file's codes
do not depend on the batch it is in). A single-channel PNG, which the reference's
``[:, :, 0]`` cannot index, is read as its only channel.

Files that cannot be read become :class:`Skipped` records with the reason; nothing is
dropped silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from perception_tokens.vocab import encode_depth
from training.vqvae.checkpoint import atomic_write
from training.vqvae.data import batched
from training.vqvae.extract import extract_codes
from training.vqvae.model import DepthVQVAE


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """The reference's read: ``cv2.imread(IMREAD_UNCHANGED)``, channel 0 of a multi-channel
    image, as a 2-D uint8 map. Raises ValueError naming the file and the problem."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: {image.dtype} pixels; depth PNGs are 8-bit (Depth Anything's uint8 maps)")
    if image.ndim == 3:
        image = image[:, :, 0]
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"{path}: unexpected image shape {image.shape}")
    return np.ascontiguousarray(image)


def find_depth_pngs(root: str | os.PathLike) -> list[Path]:
    """Every ``*.png`` under ``root`` (recursively), sorted by relative path.

    Links that lead outside ``root`` are not followed (reported by :func:`depth_code_records`).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"depth map folder not found: {root}")
    return sorted((p for p in root.rglob("*") if p.suffix.lower() == ".png" and not p.is_dir()), key=lambda p: p.relative_to(root).as_posix())


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def depth_code_records(
    model: DepthVQVAE,
    root: str | os.PathLike,
    files: Iterable[Path],
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> Iterator[dict | Skipped]:
    """One ``{"file", "codes", "depth_tokens"}`` dict per readable file (``file`` relative to
    ``root``, POSIX separators), or a :class:`Skipped`, in the order of ``files``."""
    if model.config.codes_per_image != 100:
        raise ValueError(
            f"the checkpoint gives {model.config.codes_per_image} codes per image "
            f"({model.config.grid_size}x{model.config.grid_size}); depth tokens are 100 (10x10)"
        )
    root = Path(root)
    for chunk in batched(files, batch_size):
        readable: list[tuple[str, np.ndarray]] = []
        order: list[str | Skipped] = []
        for path in chunk:
            name = Path(path).relative_to(root).as_posix()
            if not _inside(Path(path), root):
                order.append(Skipped(name, "links outside the folder"))
                continue
            try:
                readable.append((name, read_depth_png(path)))
                order.append(name)
            except ValueError as e:
                order.append(Skipped(name, str(e)))
        codes_by_name: dict[str, list[int]] = {}
        if readable:
            rows = np.concatenate(list(extract_codes(model, [m for _, m in readable], batch_size=len(readable), device=device)))
            codes_by_name = {name: row.tolist() for (name, _), row in zip(readable, rows)}
        for item in order:
            if isinstance(item, Skipped):
                yield item
            else:
                codes = codes_by_name[item]
                yield {"file": item, "codes": codes, "depth_tokens": encode_depth(codes)}


def write_depth_codes(
    model: DepthVQVAE,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> tuple[int, list[Skipped]]:
    """Write one JSON line per readable PNG under ``root`` to ``out`` (atomically: a temp
    file renamed into place). Returns (lines written, skipped files)."""
    files = find_depth_pngs(root)
    skipped: list[Skipped] = []
    written = 0

    def _write(tmp: str) -> None:
        nonlocal written
        with open(tmp, "w", encoding="utf-8") as f:
            records = depth_code_records(model, root, files, batch_size=batch_size, device=device)
            for rec in tqdm(records, total=len(files), desc="depth codes", unit="file", disable=not progress):
                if isinstance(rec, Skipped):
                    skipped.append(rec)
                    continue
                f.write(json.dumps(rec) + "\n")
                written += 1

    atomic_write(out, _write)
    return written, skipped
