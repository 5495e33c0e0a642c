"""The fine-tune process launched by the ``lora_adapter`` asset through Dagster Pipes.

    torchrun --nproc_per_node=N training/pipes_worker.py --config cfg.json --records curriculum.json \\
        --image-dir images/ --out run/ [--span-samples 8] [--family qwen2_5_vl]

The arguments are those of the one training entry point, :func:`training.finetune.launch.main`,
which this calls with its hooks: every rank trains; only rank 0 opens the Pipes channel,
streams losses, learning rate and throughput back to Dagster as logs, then reports the
summary that the entry point wrote to ``finetune_result.json``. Run without Dagster (no Pipes
environment) it behaves like ``python -m training.finetune.launch``.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack


def main(argv: list[str] | None = None) -> int:
    from perception_tokens.parent_watch import exit_when_parent_dies

    exit_when_parent_dies()  # a killed ptok must not leave this training as an orphan

    from training.finetune.launch import main as launch

    rank0 = int(os.environ.get("RANK", "0")) == 0
    with ExitStack() as stack:
        pipes = None
        if rank0 and "DAGSTER_PIPES_CONTEXT" in os.environ:
            from dagster_pipes import open_dagster_pipes

            pipes = stack.enter_context(open_dagster_pipes())

        def log(message: str) -> None:
            (pipes.log.info if pipes else print)(message)

        def on_metrics(record: dict) -> None:
            if pipes and "loss" in record:
                pipes.log.info(f"step {record['step']}: loss {record['loss']:.4f} lr {record.get('learning_rate')}")

        summary = launch(sys.argv[1:] if argv is None else argv, metrics_callback=on_metrics, log=log)
        if rank0 and pipes:
            pipes.report_custom_message(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
