"""The fine-tune process launched by the ``lora_adapter`` asset through Dagster Pipes.

    torchrun --nproc_per_node=N training/pipes_worker.py --config cfg.json --records curriculum.json \\
        --image-dir images/ --out run/ [--span-samples 8] [--family qwen2_5_vl]

Every rank trains (the family's backend in training/backends does the work); only rank 0 opens the Pipes channel and
streams losses, learning rate and throughput back to Dagster as logs, then reports the
final metrics. Run without Dagster (no Pipes environment) it behaves like
``python -m training.llava.launch``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path


def _rate_before_training(backend, config, records, image_dir) -> float:
    """Well-formed depth-span rate of the starting point (base model + initialised new tokens)."""
    import torch

    from training.llava.train import depth_span_wellformed_rate

    torch.manual_seed(config.seed)
    model, processor = backend.load(config.checkpoint, seed=config.seed, device="cuda" if torch.cuda.is_available() else "cpu")
    backend.add_tokens(model, processor, config)
    model.eval()
    rate = depth_span_wellformed_rate(model, processor, records, image_dir=image_dir)
    del model
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--records", required=True)
    parser.add_argument("--image-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--span-samples", type=int, default=8, help="atomic depth prompts used to measure well-formed spans")
    parser.add_argument("--family", help="model family (training/backends); default: detected from the checkpoint")
    args = parser.parse_args(argv)

    from perception_tokens.parent_watch import exit_when_parent_dies

    exit_when_parent_dies()  # a killed ptok must not leave this training as an orphan

    from training.backends import get_backend, resolve_family
    from training.llava.launch import RESULT_FILE, read_config, result_to_dict
    from training.llava.train import depth_span_wellformed_rate

    rank0 = int(os.environ.get("RANK", "0")) == 0
    config = read_config(args.config)
    backend = get_backend(resolve_family(args.family, config.checkpoint))
    records = json.loads(Path(args.records).read_text())
    depth_probe = [r for r in records if "What is the depth map for the image?" in r["conversations"][0]["value"]][: args.span_samples]

    with ExitStack() as stack:
        pipes = None
        if rank0 and "DAGSTER_PIPES_CONTEXT" in os.environ:
            from dagster_pipes import open_dagster_pipes

            pipes = stack.enter_context(open_dagster_pipes())

        def log(message: str) -> None:
            (pipes.log.info if pipes else print)(message)

        def on_metrics(record: dict) -> None:
            if pipes and "loss" in record:
                pipes.log.info("step {step}: loss {loss:.4f} lr {lr}".format(step=record.get("step"), loss=record["loss"],
                                                                               lr=record.get("learning_rate", record.get("lr"))))

        before = _rate_before_training(backend, config, depth_probe, args.image_dir) if rank0 and depth_probe else float("nan")
        start = time.perf_counter()
        result = backend.run_finetune(config, records, args.image_dir, args.out, log=log, metrics_callback=on_metrics)
        seconds = time.perf_counter() - start
        if not rank0:
            return 0
        after = float("nan")
        if depth_probe:
            model, processor = backend.reload_adapter(result.adapter_dir)
            model.eval()
            after = depth_span_wellformed_rate(model, processor, depth_probe, image_dir=args.image_dir)
        summary = {**result_to_dict(result), "span_rate_before": before, "span_rate_after": after,
                   "train_seconds": seconds, "span_samples": len(depth_probe), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                   "family": backend.family}
        out = Path(args.out) / RESULT_FILE
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, out)
        log(f"done: {result.steps} steps, final loss {result.final_loss:.4f}, well-formed depth spans {before:.2f} -> {after:.2f}")
        if pipes:
            pipes.report_custom_message(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
