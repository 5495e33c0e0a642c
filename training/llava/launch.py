"""Command-line entry for the fine-tune, so ``python -m`` and ``torchrun`` can start it.

    python -m training.llava.launch --config cfg.json --records curriculum.json \\
        --image-dir images/ --out runs/lora
    torchrun --nproc_per_node=2 -m training.llava.launch ...

Pure: no Dagster here. A wrapper elsewhere (e.g. a Dagster Pipes script) calls
:func:`main` with ``metrics_callback`` (every log event as a dict) and ``log`` to forward
them; the CLI itself prints logs and, with ``--metrics-jsonl``, appends each event as
one JSON line. The final result is written to ``<out>/finetune_result.json`` (rank 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from training.llava.train import FinetuneConfig, FinetuneResult, run_finetune

RESULT_FILE = "finetune_result.json"


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


def result_to_dict(result: FinetuneResult) -> dict[str, Any]:
    return {
        "adapter_dir": str(result.adapter_dir),
        "final_loss": result.final_loss,
        "loss_history": [list(p) for p in result.loss_history],
        "tokens_per_s": result.tokens_per_s,
        "steps": result.steps,
        "step_time_s": result.step_time_s,
        "loss_curve_png": str(result.loss_curve_png) if result.loss_curve_png else None,
    }


def _jsonl_appender(path: Path) -> Callable[[dict[str, Any]], None]:
    path.parent.mkdir(parents=True, exist_ok=True)

    def append(record: dict[str, Any]) -> None:
        with path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    return append


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="LoRA fine-tune of LLaVA with perception tokens")
    parser.add_argument("--config", help="JSON file of FinetuneConfig fields (defaults when omitted)")
    parser.add_argument("--records", required=True, help="LLaVA conversation records (JSON list or JSONL)")
    parser.add_argument("--image-dir", required=True, help="folder the records' image paths are relative to")
    parser.add_argument("--out", required=True, help="output folder: checkpoints/, adapter/, loss_curve.png")
    parser.add_argument("--metrics-jsonl", help="append every log event as a JSON line here (rank 0)")
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None,
    *,
    metrics_callback: Callable[[dict[str, Any]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> FinetuneResult:
    """Parse ``argv``, run the fine-tune, write ``finetune_result.json``; hooks forward progress."""
    args = parse_args(argv)
    config = read_config(args.config)
    callbacks = [cb for cb in (metrics_callback, _jsonl_appender(Path(args.metrics_jsonl)) if args.metrics_jsonl else None) if cb]

    def forward(record: dict[str, Any]) -> None:
        for cb in callbacks:
            cb(record)

    printer = log or (lambda msg: print(msg, flush=True))
    result = run_finetune(
        config, args.records, args.image_dir, args.out, log=printer, metrics_callback=forward if callbacks else None
    )
    if int(os.environ.get("RANK", "0")) == 0:
        out = Path(args.out) / RESULT_FILE
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(result_to_dict(result), indent=1))
        os.replace(tmp, out)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
