"""Pseudo-depth labelling throughput: batched vs one image per forward, same model, one run.

    python benchmarks/bench_pseudo_depth.py --models tiny,vits --images 32 --batch-size 16

Models have random weights (speed does not depend on the values). Each measurement runs
the whole labelling path: preprocessing, forward, resize back, min-max, PNG encoding.
Prints one JSON line per model. ``benchmarks/run_all.py`` calls :func:`bench_model`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perception_tokens.depth import DepthAnythingTeacher, build_depth_anything, label_images, label_images_one_by_one  # noqa: E402
from perception_tokens.depth.teachers import resolve_device  # noqa: E402


def synthetic_items(count: int, height: int, width: int, seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [("bench", f"{i:05d}", rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for i in range(count)]


def images_per_second(run, items) -> float:
    start = time.perf_counter()
    produced = sum(1 for _ in run(items))
    elapsed = time.perf_counter() - start
    if produced != len(items):
        raise RuntimeError(f"labelled {produced} of {len(items)}")
    return len(items) / elapsed


def bench_model(
    encoder: str,
    *,
    images: int = 32,
    batch_size: int = 16,
    input_size: int = 518,
    height: int = 480,
    width: int = 640,
    device: str = "auto",
    autocast: bool = True,
    repeats: int = 1,
) -> dict:
    """Images/s of ``label_images`` (batched) and ``label_images_one_by_one`` on the same model and images.

    The two paths alternate ``repeats`` times and the best of each counts.
    """
    dev = resolve_device(device)
    model = build_depth_anything(version=2, encoder=encoder, seed=0)
    teacher = DepthAnythingTeacher(model, f"bench-{encoder}", input_size, dev, autocast=autocast)
    items = synthetic_items(images, height, width)
    warm = items[: min(len(items), batch_size)]
    list(label_images(teacher, warm, batch_size=batch_size, progress=False))  # warm-up (kernels, allocator)
    list(label_images_one_by_one(teacher, warm[:2], progress=False))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    batched = single = 0.0
    for _ in range(max(1, repeats)):
        batched = max(batched, images_per_second(
            lambda xs: label_images(teacher, xs, batch_size=batch_size, progress=False), items))
        single = max(single, images_per_second(lambda xs: label_images_one_by_one(teacher, xs, progress=False), items))
    record = {
        "bench": "pseudo_depth",
        "model": f"depth_anything_v2_{encoder}",
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "bf16_autocast": teacher.use_bf16,
        "images": len(items),
        "image_hw": [height, width],
        "input_size": input_size,
        "batch_size": batch_size,
        "repeats": repeats,
        "batched_img_per_s": round(batched, 3),
        "one_by_one_img_per_s": round(single, 3),
        "speedup": round(batched / single, 2),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        record["peak_gpu_mem_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,vits", help="comma list of tiny, vits, vitb, vitl")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--input-size", type=int, default=518)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-autocast", action="store_true", help="fp32 on CUDA too")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the two paths this many times, keep the best")
    args = parser.parse_args()
    for encoder in args.models.split(","):
        record = bench_model(
            encoder.strip(), images=args.images, batch_size=args.batch_size, input_size=args.input_size,
            height=args.height, width=args.width, device=args.device, autocast=not args.no_autocast,
            repeats=args.repeats,
        )
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
