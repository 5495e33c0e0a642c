"""Depth-token extraction speed: batched vs one image per forward, same model, same maps.

Not a test. Prints one JSON line per model size (and appends it to --out if given):

    .venv/bin/python benchmarks/bench_depth_tokens.py --sizes tiny full --n 64
    .venv/bin/python benchmarks/bench_depth_tokens.py --mode train --device cpu

``--mode extract`` (default) times ``extract_codes`` (batched, inference_mode) against
``extract_codes_one_by_one`` (the reference get_codes.py loop) on synthetic 64x64 scenes,
checks both give identical codes, and reports images/s and the speed-up. Models are
randomly initialised (speed does not depend on the weights; k-means-initialised on one
batch so codes are spread).

``--mode train`` trains the tiny demo config on synthetic scenes and reports, after each
epoch, held-out closest-point agreement and wall time, stopping at --target.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.vqvae.checkpoint import load_vqvae  # noqa: E402
from training.vqvae.data import depth_to_tensor  # noqa: E402
from training.vqvae.extract import extract_codes, extract_codes_one_by_one  # noqa: E402
from training.vqvae.metrics import evaluate_vqvae  # noqa: E402
from training.vqvae.model import DepthVQVAE, VQVAEConfig, tiny_config  # noqa: E402
from training.vqvae.synthetic import synthetic_depth_maps  # noqa: E402
from training.vqvae.train import VQVAETrainConfig, train_vqvae  # noqa: E402

SIZES = {"tiny": tiny_config, "full": VQVAEConfig}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_extract(size: str, n: int, batch_size: int, device: torch.device, seed: int, repeats: int = 2) -> dict:
    """Images/s of ``extract_codes`` (batched) and ``extract_codes_one_by_one`` on the same model and maps.

    The two paths alternate ``repeats`` times (batched first, then one by one, ...) and the
    best time of each counts, so neither gains from running second (caches, allocator).
    """
    torch.manual_seed(seed)
    cfg = SIZES[size]()
    model = DepthVQVAE(cfg).to(device)
    maps = synthetic_depth_maps(n, seed=seed)
    model.train()
    with torch.no_grad():  # k-means init on one batch, then frozen
        model(depth_to_tensor(maps[: min(n, 32)], cfg.image_size).to(device))
    model.eval()
    list(extract_codes(model, maps[:batch_size], batch_size=batch_size))  # warm-up
    list(extract_codes_one_by_one(model, maps[:2]))

    def timed(run):
        _sync(device)
        t0 = time.perf_counter()
        codes = run()
        _sync(device)
        return time.perf_counter() - t0, codes

    t_batched = t_single = float("inf")
    for _ in range(max(1, repeats)):
        t, batched_codes = timed(lambda: [c for b in extract_codes(model, maps, batch_size=batch_size) for c in b])
        t_batched = min(t_batched, t)
        t, single_codes = timed(lambda: list(extract_codes_one_by_one(model, maps)))
        t_single = min(t_single, t)

    # fraction of equal codes: batch-size-dependent conv kernels differ at the 1e-7 level,
    # which can flip near-ties in an untrained model's nearest-code search
    agreement = sum(int((a == b).sum()) for a, b in zip(batched_codes, single_codes)) / (n * cfg.codes_per_image)
    return {
        "bench": "depth_token_extraction",
        "size": size,
        "image_size": cfg.image_size,
        "grid": cfg.grid_size,
        "params": model.num_parameters(),
        "n_images": n,
        "batch_size": batch_size,
        "repeats": repeats,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "batched_images_per_s": round(n / t_batched, 2),
        "one_by_one_images_per_s": round(n / t_single, 2),
        "speedup": round(t_single / t_batched, 2),
        "code_agreement": round(agreement, 5),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }


def bench_train(args: argparse.Namespace, device: torch.device) -> dict:
    cfg = tiny_config()
    train_maps = synthetic_depth_maps(args.train_maps, seed=args.seed)
    val_maps = synthetic_depth_maps(args.val_maps, seed=args.seed + 10_000)
    tc = VQVAETrainConfig(
        epochs=args.max_epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=str(device)
    )
    out = Path(args.work_dir)
    curve = []
    reached = None
    t_train = 0.0
    for epoch in range(1, args.max_epochs + 1):
        tc.epochs = epoch  # resume one more epoch each round; evaluation time not counted
        t0 = time.perf_counter()
        res = train_vqvae(cfg, tc, lambda: train_maps, out, log=lambda m: None, progress=False, resume=epoch > 1)
        t_train += time.perf_counter() - t0
        metrics = evaluate_vqvae(load_vqvae(out, device), val_maps, batch_size=64, seed=args.seed)
        row = {
            "epoch": epoch,
            "step": res.step,
            "train_seconds": round(t_train, 1),
            "loss": round(res.epoch_metrics[-1]["loss"], 5),
            "closest_point_agreement": round(metrics["closest_point_agreement"], 4),
            "abs_rel": round(metrics["abs_rel"], 4),
            "delta1": round(metrics["delta1"], 4),
            "usage": metrics["usage"],
            "perplexity": round(metrics["perplexity"], 1),
        }
        curve.append(row)
        print(json.dumps(row), file=sys.stderr)
        if reached is None and metrics["closest_point_agreement"] >= args.target:
            reached = row
            break
    return {
        "bench": "tiny_vqvae_train_to_agreement",
        "config": cfg.to_dict(),
        "train_maps": args.train_maps,
        "val_maps": args.val_maps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "target": args.target,
        "reached": reached,
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["extract", "train"], default="extract")
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["tiny", "full"])
    p.add_argument("--n", type=int, default=64, help="images to extract")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2, help="alternate batched / one by one this many times, keep the best")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-maps", type=int, default=512)
    p.add_argument("--val-maps", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-epochs", type=int, default=30)
    p.add_argument("--target", type=float, default=0.95)
    p.add_argument("--work-dir", default="/tmp/bench_depth_vqvae")
    p.add_argument("--out", type=Path, help="append JSON lines here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.mode == "extract":
        rows = [bench_extract(s, args.n, args.batch_size, device, args.seed, args.repeats) for s in args.sizes]
    else:
        rows = [bench_train(args, device)]
    for row in rows:
        line = json.dumps(row)
        print(line)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with args.out.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
