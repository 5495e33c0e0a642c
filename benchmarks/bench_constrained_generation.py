"""Constrained vs unconstrained generation on the same prompts, same model, one run.

    python benchmarks/bench_constrained_generation.py --rows 8 --max-new-tokens 128

Model: the tiny LLaVA preset (``training.llava.model.load_llava("tiny")``: real LLaVA /
CLIP / Llama classes at toy size) with the perception tokens added. Prompts: HardBLINK
rows written by ``evaluation.benchmarks.demo.write_demo_benchmarks`` from generated
scenes and read back with ``read_hardblink`` (CoT prompts, as in evaluation). Each side
runs ``evaluation.generate.generate_predictions``; only ``GenerationSettings.constrained``
differs. Reports tokens/s of both, their ratio, and the share of generation time spent
inside the constraint's logits processor (timed by wrapping its ``__call__``).

``push=True`` adds, on both sides, a logits processor that makes every perception token
the model's favourite (as in tests/evaluation): the untrained model then writes perception
tokens all the time, so the constraint's depth-span / box state machine is exercised on
every step, as it would be for a fine-tuned model writing a 100-token depth map.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evaluation.generate as generate_module  # noqa: E402
from evaluation.benchmarks import read_hardblink, split_rows  # noqa: E402
from evaluation.benchmarks.demo import write_demo_benchmarks  # noqa: E402
from evaluation.constrained import DepthSpanLogitsProcessor  # noqa: E402
from evaluation.generate import GenerationSettings, generate_predictions  # noqa: E402
from evaluation.perception_bias import PerceptionTokenBias  # noqa: E402
from perception_tokens.demo.scenes import generate_scene  # noqa: E402


class TimedConstraint(DepthSpanLogitsProcessor):
    """The real constraint, with the wall time spent in its ``__call__`` accumulated."""

    seconds = 0.0
    calls = 0

    def __call__(self, input_ids, scores):
        t0 = time.perf_counter()
        try:
            return super().__call__(input_ids, scores)
        finally:
            TimedConstraint.seconds += time.perf_counter() - t0
            TimedConstraint.calls += 1


def hardblink_rows(n_rows: int, seed: int = 0) -> list[dict]:
    """``n_rows`` HardBLINK rows (3/4/5 points) from generated scenes, read back by the real reader."""
    rng = np.random.default_rng(seed)
    scenes = [generate_scene(rng, 160, 120) for _ in range(n_rows // 3 + 2)]
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        write_demo_benchmarks(tmp, scenes, seed=seed)
        rows, rejects = split_rows(read_hardblink(Path(tmp) / "hardblink"))
    if rejects:
        raise RuntimeError(f"demo HardBLINK rows rejected by the reader: {rejects[:3]}")
    if len(rows) < n_rows:
        raise RuntimeError(f"only {len(rows)} HardBLINK rows from {len(scenes)} scenes, wanted {n_rows}")
    return rows[:n_rows]


def _timed_generate(model, processor, rows, settings: GenerationSettings, extra) -> dict:
    TimedConstraint.seconds, TimedConstraint.calls = 0.0, 0
    with mock.patch.object(generate_module, "DepthSpanLogitsProcessor", TimedConstraint):
        t0 = time.perf_counter()
        out = generate_predictions(model, processor, rows, settings, extra_logits_processors=extra, progress=False)
        seconds = time.perf_counter() - t0
    errors = [r["error"] for r in out if r["error"]]
    if errors:
        raise RuntimeError(f"generation failed on {len(errors)} rows: {errors[:2]}")
    tokens = sum(int(r["n_new_tokens"]) for r in out)
    return {
        "seconds": seconds,
        "new_tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "processor_seconds": TimedConstraint.seconds,
        "processor_calls": TimedConstraint.calls,
        "valid_depth_spans": sum(sum(bool(v) for v in r["depth_spans_valid"]) for r in out),
        "invalid_depth_spans": sum(sum(not v for v in r["depth_spans_valid"]) for r in out),
    }


def bench_constrained(
    *,
    n_rows: int = 8,
    max_new_tokens: int = 128,
    batch_size: int = 4,
    repeats: int = 2,
    push: bool = False,
    seed: int = 0,
) -> dict:
    """Tokens/s of constrained and unconstrained generation (best of ``repeats``, interleaved)."""
    from training.finetune.tokens import add_perception_tokens
    from training.llava.model import load_llava

    model, processor = load_llava("tiny", seed=seed)
    add_perception_tokens(model, processor.tokenizer)
    model.eval()
    rows = hardblink_rows(n_rows, seed=seed)
    extra = [PerceptionTokenBias(processor.tokenizer)] if push else []

    def settings(constrained: bool, tokens: int = max_new_tokens) -> GenerationSettings:
        return GenerationSettings(mode="cot", ablation="normal", constrained=constrained,
                                  max_new_tokens=tokens, batch_size=batch_size, seed=seed)

    for constrained in (False, True):  # warm-up: allocator, tokenizer caches, the constraint's vocab scan
        _timed_generate(model, processor, rows[:batch_size], settings(constrained, 8), extra)
    runs: dict[str, list[dict]] = {"unconstrained": [], "constrained": []}
    for _ in range(repeats):
        runs["unconstrained"].append(_timed_generate(model, processor, rows, settings(False), extra))
        runs["constrained"].append(_timed_generate(model, processor, rows, settings(True), extra))
    best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in runs.items()}
    c, u = best["constrained"], best["unconstrained"]
    return {
        "bench": "constrained_generation",
        "model": "tiny LLaVA (CLIP + Llama, random weights) + perception tokens",
        "vocab_size": len(processor.tokenizer),
        "rows": len(rows),
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "push_perception_tokens": push,
        "repeats": repeats,
        "constrained": c,
        "unconstrained": u,
        "tokens_per_s_ratio": c["tokens_per_s"] / u["tokens_per_s"],
        "seconds_per_token_ratio": (c["seconds"] / max(c["new_tokens"], 1)) / (u["seconds"] / max(u["new_tokens"], 1)),
        "processor_share": c["processor_seconds"] / c["seconds"],
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--push", action="store_true", help="push the model towards perception tokens (both sides)")
    args = p.parse_args()
    print(json.dumps(bench_constrained(n_rows=args.rows, max_new_tokens=args.max_new_tokens,
                                       batch_size=args.batch_size, repeats=args.repeats, push=args.push)))


if __name__ == "__main__":
    main()
