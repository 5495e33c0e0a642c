"""The generated demo world: datasets and benchmark sets written once, under a file lock
(parallel steps may ask for them at the same time)."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# bumped when the demo sets' layout changes, so an older demo folder is rewritten
DEMO_BENCHMARKS_LAYOUT_VERSION = "refcoco-res-layout-1"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ensure_demo_datasets(root: Path, *, n_ade20k: int, n_lvis: int, n_refcoco: int, seed: int,
                         width: int, height: int, log=None) -> None:
    """ADE20K, LVIS and RefCOCO layouts under ``root``, generated unless already complete."""
    from perception_tokens.demo import write_demo_datasets

    marker = root / "demo_manifest.json"  # written last by the generator
    if marker.exists():
        return
    with file_lock(root.parent / f".{root.name}.lock"):
        if marker.exists():
            return
        if log:
            log.info(f"generating demo datasets under {root}")
        write_demo_datasets(root, n_ade20k=n_ade20k, n_lvis=n_lvis, n_refcoco=n_refcoco, seed=seed,
                            image_size=(width, height), show_progress=True)


def _demo_benchmarks_current(marker: Path) -> bool:
    return marker.is_file() and marker.read_text().strip() == DEMO_BENCHMARKS_LAYOUT_VERSION


def ensure_demo_benchmarks(root: Path, *, scenes: int, seed: int, log=None) -> None:
    """Small benchmark sets in the published formats under ``root`` (depth maps in ``root/depth``),
    generated unless present in the current layout."""
    marker = root / ".complete"
    if _demo_benchmarks_current(marker):
        return
    with file_lock(root.parent / f".{root.name}.lock"):
        if _demo_benchmarks_current(marker):
            return
        import numpy as np

        from evaluation.benchmarks.demo import write_demo_benchmarks
        from perception_tokens.demo.scenes import generate_scene

        if log:
            log.info(f"generating demo benchmarks under {root}")
        rng = np.random.default_rng(seed)
        generated = [generate_scene(rng, 320, 240) for _ in range(scenes)]
        write_demo_benchmarks(root, generated, seed=seed, depth_dir=root / "depth")
        marker.write_text(DEMO_BENCHMARKS_LAYOUT_VERSION + "\n")
