"""gpu_check sections for the image models: the environment, Depth Anything V1, the aurora VQ-VAE.

Every section is ``fn(plan) -> dict`` where ``plan`` is a :class:`SectionPlan`: the device
to use, whether sizes are the real ones or the smoke ones, and a monotonic deadline that
long loops check (the parent also kills the process at its timeout). Timings bracket the
work with ``torch.cuda.synchronize``; peak memory is ``torch.cuda.max_memory_allocated``
after ``reset_peak_memory_stats`` (GPU only; ``None`` on the CPU).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class SectionPlan:
    device: str  # "cuda" or "cpu"
    smoke: bool  # tiny sizes (CPU test) instead of the real architectures
    deadline: float  # time.monotonic() value after which loops stop early

    def time_left(self) -> float:
        return self.deadline - time.monotonic()


# ----------------------------------------------------------------------------- timing helpers


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_memory(device: str) -> None:
    """Free cached blocks and restart the peak counter: each measurement's peak is its own."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(device: str) -> float | None:
    if device.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return None


def seconds_per_call(fn: Callable[[], object], device: str, *, warmup: int, iters: int) -> float:
    """Mean wall seconds of ``fn()`` over ``iters`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / iters


def sig(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant figures (0.0123 stays 0.0123, not 0.01)."""
    return float(f"{value:.{digits}g}")


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


# ----------------------------------------------------------------------------- environment


def environment(plan: SectionPlan) -> dict:
    import peft
    import transformers

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,  # torch defaults: off for matmul, on for cuDNN
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device_name=props.name, device_count=torch.cuda.device_count(),
                    device_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f"{props.major}.{props.minor}", bf16_supported=torch.cuda.is_bf16_supported())
    else:
        info.update(device_name="cpu", device_count=0)
    return info


# ----------------------------------------------------------------------------- Depth Anything V1


DEPTH_SIZE = 518
DEPTH_BATCHES = (1, 2, 4, 8, 16, 32, 64)


def _depth_settings(plan: SectionPlan) -> tuple[tuple[str, ...], int, tuple[torch.dtype, ...], tuple[int, ...], int]:
    """(encoders, input size, dtypes, batch sizes, timed iterations) for the plan."""
    if plan.smoke:
        return ("tiny",), 70, (torch.float32,), (1, 2), 2
    if plan.device == "cpu":  # the CPU ratio: batch 1 in float32 only, one timed call after one warm-up
        return ("vits", "vitl"), DEPTH_SIZE, (torch.float32,), (1,), 1
    return ("vits", "vitl"), DEPTH_SIZE, (torch.float16, torch.bfloat16), DEPTH_BATCHES, 5


def depth_anything(plan: SectionPlan) -> dict:
    """Images/s of Depth Anything V1 (the ``aurora`` teacher's network, dpt_dinov2.py) at 518x518:
    batch 1 and the best batch (doubling until out of memory or out of time), per dtype."""
    from perception_tokens.depth import build_dpt_dinov2, parameter_count

    encoders, size, dtypes, batches, iters = _depth_settings(plan)
    rows, notes = [], []
    for encoder in encoders:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            base = build_dpt_dinov2(encoder, device=plan.device)
        for dtype in dtypes:
            model = base.to(dtype)
            best = None
            for batch in batches:
                if batch > 1 and plan.time_left() < 20:
                    notes.append(f"{encoder} {dtype}: stopped before batch {batch} (section time)")
                    break
                x = torch.randn(batch, 3, size, size, device=plan.device, dtype=dtype)
                reset_memory(plan.device)
                try:
                    with torch.inference_mode():
                        s = seconds_per_call(lambda: model(x), plan.device, warmup=1 if plan.device == "cpu" else 2,
                                             iters=iters)
                except RuntimeError as exc:
                    if not is_out_of_memory(exc):
                        raise
                    notes.append(f"{encoder} {dtype}: batch {batch} out of memory")
                    del x
                    reset_memory(plan.device)
                    break
                row = {"encoder": encoder, "dtype": str(dtype).removeprefix("torch."), "input": size, "batch": batch,
                       "images_per_s": sig(batch / s), "ms_per_batch": sig(1000 * s),
                       "peak_memory_mib": peak_mib(plan.device)}
                del x
                if batch == 1:
                    rows.append({**row, "case": "batch 1"})
                if best is None or row["images_per_s"] > best["images_per_s"]:
                    best = row
            if best is not None and len(batches) > 1:
                rows.append({**best, "case": "best batch"})
        rows_params = parameter_count(base)
        notes.append(f"{encoder}: {rows_params:,} parameters")
        del base, model
        reset_memory(plan.device)
    return {"model": "Depth Anything V1 (DPT + DINOv2, perception_tokens/depth/dpt_dinov2.py), random weights",
            "rows": rows, "notes": notes}


# ----------------------------------------------------------------------------- aurora VQ-VAE


def _depth_maps(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (xx * 255 // max(width - 1, 1)).astype(np.int32)
    return [((base + yy // 4 + int(rng.integers(0, 64))) % 256).astype(np.uint8) for _ in range(n)]


def vqvae(plan: SectionPlan) -> dict:
    """The ``aurora`` VQ-VAE (training/vqvae/aurora.py, 320 px, float32 as the reference trains):
    training images/s (forward, backward, Adam step, EMA codebook update, as ``train_vqvae``)
    at batch 8 and 64, and extraction images/s through ``extract_codes`` (uint8 maps in,
    resize and encode, int16 codes out: the pipeline's path)."""
    from training.vqvae import DepthVQVAE, VQVAEConfig, extract_codes
    from training.vqvae.data import model_input

    if plan.smoke:  # the aurora layers and quantizer at toy width: 80 px -> the same 10x10 grid
        config = VQVAEConfig.aurora(image_size=80, num_downsamples=3, hidden_channels=(8, 16, 32), code_dim=32)
        train_batches, n_extract, map_shape, steps = (2, 4), 16, (60, 80), 2
    elif plan.device == "cpu":  # the CPU ratio: one timed step, a few maps
        config, train_batches, n_extract, map_shape, steps = VQVAEConfig.aurora(), (8,), 16, (480, 640), 1
    else:
        config, train_batches, n_extract, map_shape, steps = VQVAEConfig.aurora(), (8, 64), 1024, (480, 640), 10
    torch.manual_seed(0)
    model = DepthVQVAE(config).to(plan.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    rows = []
    for batch in train_batches:
        x = model_input(_depth_maps(batch, *map_shape), config).to(plan.device)
        model.train()

        def step() -> None:
            out = model(x)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()

        reset_memory(plan.device)
        s = seconds_per_call(step, plan.device, warmup=1 if plan.device == "cpu" else 2, iters=steps)
        rows.append({"case": f"train batch {batch}", "batch": batch, "images_per_s": sig(batch / s),
                     "ms_per_step": sig(1000 * s), "peak_memory_mib": peak_mib(plan.device)})
    maps = _depth_maps(n_extract, *map_shape)
    list(extract_codes(model, maps[: min(64, n_extract)], batch_size=64, device=plan.device))  # warm-up
    reset_memory(plan.device)
    sync(plan.device)
    t0 = time.perf_counter()
    n_codes = sum(len(c) for c in extract_codes(model, maps, batch_size=64, device=plan.device))
    sync(plan.device)
    s = time.perf_counter() - t0
    if n_codes != n_extract:
        raise RuntimeError(f"extract_codes returned {n_codes} rows for {n_extract} maps")
    rows.append({"case": "extract batch 64", "batch": 64, "images_per_s": sig(n_extract / s),
                 "ms_per_image": sig(1000 * s / n_extract), "peak_memory_mib": peak_mib(plan.device),
                 "maps": n_extract, "map_size": f"{map_shape[0]}x{map_shape[1]} uint8"})
    return {"model": f"DepthVQVAE {config.architecture} {config.image_size}px, {model.num_parameters():,} parameters",
            "rows": rows, "notes": ["training inputs are prepared tensors on the device (PNG decode excluded); "
                                    "extraction includes the uint8 resize on the CPU"]}
