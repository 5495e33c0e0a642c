"""Per-image cost and peak RSS of the per-image stages, in-process and on a local Ray cluster.

    python benchmarks/scale.py --sizes 1000 10000          # writes benchmarks/results/scale.{json,md}

Each (stage, engine, size) runs in a fresh subprocess, so its peak RSS is its own; RSS is
the sum over the process and all its descendants (with Ray: GCS, raylet, the 2 workers),
sampled every 50 ms. CPU time (user + system, same process tree) is recorded beside wall
time: on a shared machine it moves far less with other jobs' load than wall time does. Stages run through the same functions the assets call
(``label_images_on``, ``code_batches``, ``MarkingWorker`` via ``map_batches``) on
streamed synthetic 120x160 images, with tiny models of the real architectures:

- ``pseudo_depth``: tiny Depth Anything V2 (DINOv2 width 32, 4 layers) through the
  torch.hub teacher, 112 px input;
- ``depth_tokens``: the tiny AiT VQ-VAE (80 px, 10x10 codes of 128);
- ``marked_points``: 2-5 markers per image from a depth map (OpenCV, no model).

``extrapolate`` turns a per-image GPU cost into the wall time of ADE20K + LVIS + RefCOCO on
N GPUs. No GPU was lent when this was written, so the per-image GPU costs are estimates
from the FLOP count of the real models at an assumed utilisation (see ``GPU_ESTIMATES``).

    python benchmarks/scale.py --paper-run --gpus 8 --usd-per-gpu-hour 3.0

prints the wall time and cost of the paper's whole run (pseudo-depth, VQ-VAE, extraction, the
13B fine-tune, the evaluations) from ``benchmarks/results/gpu_check.json`` when a full GPU check
wrote one, else from FLOP estimates, and says which (``paper_run.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

STAGES = ("pseudo_depth", "depth_tokens", "marked_points")
ENGINES = ("inprocess", "ray")
# Images per dataset (train + val): ADE20K SceneParsing 20,210 + 2,000; LVIS v1 (COCO 2017)
# 100,170 + 19,809; RefCOCO (UNC) 19,994 COCO train2014 images.
DATASET_IMAGES = {"ade20k": 22_210, "lvis": 119_979, "refcoco": 19_994}
# Per-image GPU cost estimates (H100/H200 class, bf16, no GPU measurement yet):
# Depth Anything V2 ViT-L at 518 px: 1,369 tokens x 24 layers x (24 n d^2 + 4 n^2 d) with
# d = 1024 is 1.0 TFLOP for the encoder, ~1.2 TFLOP with the DPT head; at 300 TFLOP/s
# effective (30% of ~990 dense bf16) that is 4 ms/image. The Aurora VQ-VAE encoder at
# 320 px is ~25 GFLOP: 0.1 ms of compute, so PNG decode (~2 ms on one CPU core) bounds it.
GPU_ESTIMATES_MS = {"pseudo_depth": 4.0, "depth_tokens": 2.0, "marked_points": 0.0}


def _rss_sampler(stop: threading.Event, peak: list[int]) -> None:
    import psutil

    me = psutil.Process()
    while not stop.is_set():
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        peak[0] = max(peak[0], total)
        stop.wait(0.05)


def _tree_cpu_s() -> float:
    """User + system CPU seconds of this process and its live descendants."""
    import psutil

    total = 0.0
    for p in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _images(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    for i in range(n):
        yield "ade20k", f"img{i:06d}", np.roll(base, i % 160, axis=1)


def _depth_map(i: int) -> np.ndarray:
    yy, xx = np.mgrid[0:120, 0:160]
    return ((xx + 2 * yy + i) % 256).astype(np.uint8)


def _run_one(stage: str, engine_kind: str, n: int) -> dict:
    import cv2

    from perception_tokens.engine import EngineSettings, ensure_ray, map_batches

    engine = EngineSettings(kind=engine_kind, num_workers=2, num_cpus=2, object_store_mb=256)
    tmp = Path(tempfile.mkdtemp(prefix="ptok_scale_"))
    startup = 0.0
    if engine_kind == "ray":
        t0 = time.perf_counter()
        ensure_ray(engine)
        startup = time.perf_counter() - t0
    peak, stop = [0], threading.Event()
    sampler = threading.Thread(target=_rss_sampler, args=(stop, peak), daemon=True)
    sampler.start()
    cpu0 = _tree_cpu_s()
    t0 = time.perf_counter()
    if stage == "pseudo_depth":
        from perception_tokens.depth import build_teacher, build_tiny_depth_anything, save_tiny_for_hub
        from perception_tokens.depth.on_engine import label_images_on

        pth = save_tiny_for_hub(build_tiny_depth_anything(version=2, seed=0), tmp / "tiny.pth")
        make = partial(build_teacher, "depth_anything_hub", checkpoint=str(pth), encoder="tiny", input_size=112, device="cpu")
        rejects: list = []
        done = sum(1 for _ in label_images_on(engine, make, _images(n), batch_size=16, on_reject=lambda *r: rejects.append(r)))
    elif stage == "depth_tokens":
        import torch

        from training.vqvae import DepthVQVAE, save_vqvae, tiny_config
        from training.vqvae.on_engine import code_batches

        torch.manual_seed(0)
        save_vqvae(DepthVQVAE(tiny_config()), tmp / "vq")
        maps = (_depth_map(i) for i in range(n))
        done = sum(len(a) for a in code_batches(engine, str(tmp / "vq"), maps, batch_size=64))
    else:
        from perception_tokens.curriculum.marking import MarkingOptions, MarkingWorker

        opts = MarkingOptions(seed=0, min_points=2, max_points=5, variants=("beside", "center"))
        image_png = cv2.imencode(".png", next(_images(1))[2])[1].tobytes()
        items = (("ade20k", {"image_id": f"img{i:06d}", "split": "train", "image_bytes": image_png},
                  cv2.imencode(".png", _depth_map(i))[1].tobytes()) for i in range(n))
        done = sum(len(b) for b in map_batches(partial(MarkingWorker, opts), items, batch_size=16, engine=engine))
    seconds = time.perf_counter() - t0
    cpu_s = _tree_cpu_s() - cpu0  # before ray.shutdown: the workers' time counts while they live
    stop.set()
    sampler.join()
    if engine_kind == "ray":
        import ray

        ray.shutdown()
    if done != n:
        raise RuntimeError(f"{stage} on {engine_kind}: {done} outputs for {n} inputs")
    return {"stage": stage, "engine": engine_kind, "images": n, "seconds": round(seconds, 2),
            "ms_per_image": round(1000 * seconds / n, 3), "cpu_ms_per_image": round(1000 * cpu_s / n, 3),
            "peak_rss_mib": round(peak[0] / 2**20, 1),
            "ray_startup_s": round(startup, 2), "cpu_count": os.cpu_count()}


def extrapolate(gpus: int, ms_per_image: dict[str, float] = GPU_ESTIMATES_MS) -> dict[str, float]:
    """Hours for ADE20K + LVIS + RefCOCO per stage on ``gpus`` GPUs (perfect split by shard)."""
    total = sum(DATASET_IMAGES.values())
    return {stage: total * ms / 1000 / 3600 / gpus for stage, ms in ms_per_image.items()}


def to_markdown(rows: list[dict]) -> str:
    lines = ["| stage | engine | images | ms / image | CPU ms / image | peak RSS (MiB) | Ray start (s) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cpu = f"{r['cpu_ms_per_image']:.2f}" if "cpu_ms_per_image" in r else "-"
        lines.append(f"| {r['stage']} | {r['engine']} | {r['images']:,} | {r['ms_per_image']:.2f} | {cpu} | {r['peak_rss_mib']:.0f} | "
                     f"{r['ray_startup_s'] if r['engine'] == 'ray' else '-'} |")
    total = sum(DATASET_IMAGES.values())
    lines += ["", f"ADE20K + LVIS + RefCOCO = {total:,} images; wall time on N GPUs from the per-image GPU estimates "
              f"({', '.join(f'{k} {v} ms' for k, v in GPU_ESTIMATES_MS.items())}; FLOP-count estimates, not measured):", "",
              "| GPUs | pseudo_depth (min) | depth_tokens (min) |", "| --- | --- | --- |"]
    for g in (1, 8, 64):
        e = extrapolate(g)
        lines.append(f"| {g} | {60 * e['pseudo_depth']:.1f} | {60 * e['depth_tokens']:.1f} |")
    return "\n".join(lines) + "\n"


def paper_run_text(gpu_check: Path, gpus: int, usd_per_gpu_hour: float, assumed_mfu: float = 0.3) -> str:
    """The paper run's table (paper_run.py) from ``gpu_check`` when it exists."""
    import paper_run

    if gpus < 1 or usd_per_gpu_hour < 0:
        raise ValueError(f"need --gpus >= 1 and --usd-per-gpu-hour >= 0, got {gpus} and {usd_per_gpu_hour}")
    report = paper_run.load_report(gpu_check)
    return paper_run.to_markdown(paper_run.estimate(report, assumed_mfu), gpus, usd_per_gpu_hour, gpu_check, report)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    p.add_argument("--one", nargs=3, metavar=("STAGE", "ENGINE", "N"), help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale"))
    p.add_argument("--paper-run", action="store_true", help="print the full run's wall time and cost, then exit")
    p.add_argument("--gpu-check", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"),
                   help="gpu_check.py's JSON (used when present)")
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--usd-per-gpu-hour", type=float, default=3.0, help="price assumption of one H100-class GPU-hour")
    p.add_argument("--assumed-mfu", type=float, default=0.3, help="utilisation of the FLOP-count fallback")
    args = p.parse_args(argv)
    if args.paper_run:
        print(paper_run_text(Path(args.gpu_check), args.gpus, args.usd_per_gpu_hour, args.assumed_mfu), end="")
        return
    if args.one:
        print(json.dumps(_run_one(args.one[0], args.one[1], int(args.one[2]))))
        return
    rows = []
    for n in args.sizes:
        for stage in args.stages:
            for engine in args.engines:
                out = subprocess.run([sys.executable, __file__, "--one", stage, engine, str(n)], capture_output=True, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
                if out.returncode != 0:
                    raise RuntimeError(f"{stage}/{engine}/{n} failed:\n{out.stderr[-3000:]}")
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
    Path(args.out + ".json").write_text(json.dumps(rows, indent=1))
    Path(args.out + ".md").write_text(to_markdown(rows))
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
