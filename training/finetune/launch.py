"""The one command-line entry point of the fine-tune: any family, ``python -m`` or ``torchrun``.

    python -m training.finetune.launch --config cfg.json --records curriculum.json \\
        --image-dir images/ --out runs/lora [--span-samples 8] [--family qwen2_5_vl] [--vqvae depth_vqvae/]
    torchrun --nproc_per_node=2 -m training.finetune.launch ...

The config's ``family`` (or ``--family``; else detected from the checkpoint) picks the
backend in training/backends that trains. With ``--span-samples N`` rank 0 also measures
the well-formed depth-span rate of the starting point and of the trained adapter on the
first N atomic depth prompts and, with ``segmentation.enabled``, the rate of well-ordered
``[SEG]`` -> depth span -> answer outputs on the first N referring prompts. Rank 0 writes ``<out>/finetune_result.json``.

Pure: no Dagster here. A wrapper (training/pipes_worker.py) calls :func:`main` with
``metrics_callback`` (every log event as a dict) and ``log`` to forward them; the CLI
itself prints logs and, with ``--metrics-jsonl``, appends each event as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from training.finetune.config import FinetuneConfig

RESULT_FILE = "finetune_result.json"
MetricsCallback = Callable[[dict[str, Any]], None]


def read_config(path: str | os.PathLike | None) -> FinetuneConfig:
    """A FinetuneConfig from a JSON object file (missing keys take defaults)."""
    if path is None:
        return FinetuneConfig()
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{path}: cannot read fine-tune config ({exc})")
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: fine-tune config must be a JSON object")
    try:
        return FinetuneConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"{path}: invalid fine-tune config ({exc})")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="LoRA fine-tune with perception tokens (any model family)")
    parser.add_argument("--config", help="JSON file of FinetuneConfig fields (defaults when omitted)")
    parser.add_argument("--records", required=True, help="LLaVA conversation records (JSON list or JSONL)")
    parser.add_argument("--image-dir", required=True, help="folder the records' image paths are relative to")
    parser.add_argument("--out", required=True, help="output folder: checkpoints/, adapter/, loss_curve.png")
    parser.add_argument("--metrics-jsonl", help="append every log event as a JSON line here (rank 0)")
    parser.add_argument("--span-samples", type=int, default=0,
                        help="atomic depth prompts used to measure well-formed spans before and after training")
    parser.add_argument("--family", help="model family (training/backends); overrides the config's; default: detected")
    parser.add_argument("--vqvae", help="depth VQ-VAE folder (config.json + model.safetensors): its codebook and decoder, "
                        "frozen, for the soft-merge reconstruction depth loss (depth_losses.reconstruction)")
    return parser.parse_args(argv)


def frozen_vqvae_parts(folder: str | os.PathLike):
    """``(codebook [K, D], decoder)`` of a trained VQ-VAE for ``training.llava.losses.reconstruction_loss``:
    the decoder maps soft-merged latents ``[S, D, g, g]`` to depth ``[S, 1, H, W]`` in [0, 1]; every weight
    frozen (Perceptio sec. 3.1: the codebook and the depth decoder stay frozen), gradients flow to the latents."""
    import torch

    from training.vqvae.checkpoint import load_vqvae

    model = load_vqvae(folder, device="cuda" if torch.cuda.is_available() else "cpu")
    model.requires_grad_(False)
    codebook = model.vq.embedding.detach().clone()

    def decode(latents: torch.Tensor) -> torch.Tensor:
        return model.denormalize(model.decoder(latents.to(codebook.dtype)))

    return codebook, decode


def _jsonl_appender(path: Path) -> MetricsCallback:
    path.parent.mkdir(parents=True, exist_ok=True)

    def append(record: dict[str, Any]) -> None:
        with path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    return append


def _rates_before_training(backend, config: FinetuneConfig, probe: list[dict], order_probe: list[dict],
                           image_dir: str) -> tuple[float, float]:
    """Well-formed depth-span rate and well-ordered ([SEG] -> depth -> answer) rate of the starting point
    (base model + initialised new tokens)."""
    import torch

    from perception_tokens import token_kinds
    from training.finetune.probes import depth_span_wellformed_rate, well_ordered_rate

    torch.manual_seed(config.seed)
    if config.segmentation.enabled:
        token_kinds.enable("seg")  # the starting point has the row [SEG] will train, as the run does
    model, processor = backend.load(config.checkpoint, seed=config.seed, device="cuda" if torch.cuda.is_available() else "cpu")
    backend.add_tokens(model, processor, config)
    model.eval()
    rate = depth_span_wellformed_rate(model, processor, probe, image_dir=image_dir)
    order = well_ordered_rate(model, processor, order_probe, image_dir=image_dir)
    del model
    return rate, order


def write_result(out_dir: str | os.PathLike, summary: dict[str, Any]) -> Path:
    """``<out_dir>/finetune_result.json``, written atomically."""
    out = Path(out_dir) / RESULT_FILE
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, out)
    return out


def main(
    argv: Sequence[str] | None = None,
    *,
    metrics_callback: MetricsCallback | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Parse ``argv``, run the family's fine-tune (and the probes), write and return the summary; hooks forward progress."""
    from training.backends import get_backend, resolve_family
    from training.finetune.probes import depth_probe_records, depth_span_wellformed_rate, order_probe_records, well_ordered_rate
    from training.llava.data import load_records

    args = parse_args(argv)
    config = read_config(args.config)
    family = resolve_family(args.family or config.family, config.checkpoint)
    backend = get_backend(family)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    callbacks = [cb for cb in (metrics_callback, _jsonl_appender(Path(args.metrics_jsonl)) if args.metrics_jsonl else None) if cb]

    def forward(record: dict[str, Any]) -> None:
        for cb in callbacks:
            cb(record)

    say = log or (lambda msg: print(msg, flush=True))
    records = load_records(args.records) if args.span_samples > 0 else []
    probe = depth_probe_records(records, args.span_samples)
    # Perceptio: the referring prompts of the curriculum, answered [SEG] -> depth span -> answer?
    order_probe = order_probe_records(records, args.span_samples) if config.segmentation.enabled else []
    before, order_before = (_rates_before_training(backend, config, probe, order_probe, args.image_dir)
                            if rank0 and (probe or order_probe) else (float("nan"), float("nan")))
    started = time.perf_counter()
    if config.depth_losses.reconstruction and not args.vqvae:
        raise SystemExit("depth_losses.reconstruction needs the depth VQ-VAE: pass --vqvae <folder>")
    codebook, decoder = frozen_vqvae_parts(args.vqvae) if args.vqvae else (None, None)
    result = backend.run_finetune(config, args.records, args.image_dir, args.out, log=say,
                                  metrics_callback=forward if callbacks else None, codebook=codebook, decoder=decoder)
    seconds = time.perf_counter() - started
    summary = {**result.to_dict(), "span_rate_before": before, "span_rate_after": float("nan"), "train_seconds": seconds,
               "span_samples": len(probe), "world_size": int(os.environ.get("WORLD_SIZE", "1")), "family": family,
               "order_rate_before": order_before, "order_rate_after": float("nan"), "order_samples": len(order_probe)}
    if not rank0:
        return summary
    if probe or order_probe:
        model, processor = backend.reload_adapter(result.adapter_dir)
        summary["span_rate_after"] = depth_span_wellformed_rate(model, processor, probe, image_dir=args.image_dir)
        summary["order_rate_after"] = well_ordered_rate(model, processor, order_probe, image_dir=args.image_dir)
        if probe:
            say(f"well-formed depth spans {before:.2f} -> {summary['span_rate_after']:.2f}")
        if order_probe:
            say(f"well-ordered [SEG] -> depth -> answer {order_before:.2f} -> {summary['order_rate_after']:.2f}")
    write_result(args.out, summary)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
