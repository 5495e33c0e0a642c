"""Subprocess bodies for the fault tests (tests/hardening/test_faults.py); not a test module.

Each mode does real work slowly enough to be killed in the middle: it writes a signal file
(holding its pid) at a known point and then sleeps, so the parent can SIGKILL it there.

    python fault_worker.py table <storage_root> <signal> <rows> <version>
        materialize partition "a" of the Dagster asset ``fault_table`` through emit_table +
        ParquetIOManager; signals and hangs after half the rows are streamed to staging.
    python fault_worker.py direct <storage_root> <signal> <rows> <version>
        stage an unpartitioned table beside its final name (as write_table_atomic does) and
        hang half-way, before the commit.
    python fault_worker.py vqvae <out_dir> <seconds_per_map> [<go_file>]
        train the tiny VQ-VAE with checkpoints every step on maps that arrive slowly (and
        only once <go_file> exists, so the parent decides when training starts).
    python fault_worker.py llava <out_dir> <image_dir> <records.json> <signal> <stop_step>
        LoRA fine-tune of the tiny LLaVA; signals and hangs when step <stop_step> is logged.
    python fault_worker.py llava-in-save <out_dir> <image_dir> <records.json> <signal> <stop_step>
        same, but hangs inside the Trainer's save of checkpoint-<stop_step>, after the adapter
        weights are written and before the optimizer and trainer state are.
    python fault_worker.py write-table <final_path> <staging_dir|-> <rows>
        stage a table (in staging_dir, default beside the final name) and commit it; print
        the error, if any, as one JSON line (used with a read-only directory).

The shared configurations live here too so the test and the subprocess use the same ones.
"""


import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Iterator

HANG_SECONDS = 300  # longer than any test waits; the parent kills the process first

# ----------------------------------------------------------------------------- tables

TABLE_ASSET = "fault_table"
DIRECT_ASSET = "direct_table"
ROW_GROUP_ROWS = 16


def table_schema():
    import pyarrow as pa

    return pa.schema([("row", pa.int64()), ("version", pa.int64()), ("payload", pa.binary())])


def signal_and_hang(signal: str) -> None:
    """Tell the parent where we are (the pid, written atomically so it is never read half-done), then wait to be killed."""
    tmp = Path(f"{signal}.tmp")
    tmp.write_text(str(os.getpid()))
    os.replace(tmp, signal)
    time.sleep(HANG_SECONDS)


def table_rows(n: int, version: int, signal: str | None = None) -> Iterator[dict[str, Any]]:
    """``n`` rows of ``version``; with ``signal``, hang after half of them (already flushed)."""
    for i in range(n):
        if signal and i == n // 2:
            signal_and_hang(signal)
        # incompressible, so the bytes on disk grow with the rows written
        yield {"row": i, "version": version, "payload": random.Random(i * 100 + version).randbytes(256)}


def table_definitions(storage_root: str, rows: int, version: int, signal: str | None = None):
    """A one-asset code location wired like the real one: emit_table, StorageResource, ParquetIOManager."""
    import dagster as dg

    from pipeline_lib.emit import emit_table
    from pipeline_lib.io_manager import ParquetIOManagerFactory
    from pipeline_lib.resources import StorageResource

    catalog = str(Path(storage_root) / "catalog.duckdb")

    @dg.asset(name=TABLE_ASSET, partitions_def=dg.StaticPartitionsDefinition(["a", "b"]))
    def fault_table(context: dg.AssetExecutionContext, storage: StorageResource):
        return emit_table(context, storage, table_schema(), table_rows(rows, version, signal))

    return dg.Definitions(
        assets=[fault_table],
        resources={
            "io_manager": ParquetIOManagerFactory(root=storage_root, catalog_path=catalog),
            "storage": StorageResource(root=storage_root, catalog_path=catalog, row_group_rows=ROW_GROUP_ROWS),
        },
    )


def materialize_table(storage_root: str, rows: int, version: int, signal: str | None = None, partition: str = "a"):
    import dagster as dg

    defs = table_definitions(storage_root, rows, version, signal)
    return dg.materialize(
        list(defs.assets), resources=defs.resources, partition_key=partition,
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
    )


def stage_direct(storage_root: str, rows: int, version: int, signal: str | None = None):
    """Unpartitioned table staged in the storage root itself (write_table_atomic's layout)."""
    from upath import UPath

    from pipeline_lib.tables import stage_table

    root = UPath(storage_root)
    staged = stage_table(root, table_schema(), table_rows(rows, version, signal), {"version": version}, batch_rows=ROW_GROUP_ROWS)
    return staged.commit(root / f"{DIRECT_ASSET}.parquet")


# ----------------------------------------------------------------------------- VQ-VAE

VQ_MAPS = 32
VQ_EPOCHS = 3


def vqvae_configs():
    from training.vqvae.model import tiny_config
    from training.vqvae.train import VQVAETrainConfig

    model = tiny_config(hidden_channels=(8, 16, 32), code_dim=32, dead_code_window=2)
    train = VQVAETrainConfig(epochs=VQ_EPOCHS, batch_size=8, lr=2e-3, seed=5, shuffle_buffer=4, checkpoint_every_steps=1)
    return model, train


def vqvae_maps(seconds_per_map: float = 0.0, go: str | None = None):
    """The training maps; slowed down by ``seconds_per_map``, and held back until ``go`` exists."""
    from training.vqvae.synthetic import synthetic_depth_maps

    maps = synthetic_depth_maps(VQ_MAPS, seed=1)

    def stream():
        while go and not Path(go).exists():
            time.sleep(0.02)
        for m in maps:
            if seconds_per_map:
                time.sleep(seconds_per_map)
            yield m

    return stream


def train_vqvae_run(out_dir: str, seconds_per_map: float = 0.0, go: str | None = None):
    from training.vqvae.train import train_vqvae

    model, train = vqvae_configs()
    return train_vqvae(model, train, vqvae_maps(seconds_per_map, go), out_dir, log=lambda _m: None, progress=False)


# ----------------------------------------------------------------------------- LLaVA

LLAVA_RECORDS = 8
LLAVA_STEPS = 8
LLAVA_SAVE_STEPS = 3


def llava_config():
    from training.finetune.config import FinetuneConfig
    from training.finetune.lora import LoraSettings

    return FinetuneConfig(
        max_steps=LLAVA_STEPS, per_device_batch_size=2, lr=1e-2, projector_lr=1e-3, warmup_ratio=0.0,
        save_steps=LLAVA_SAVE_STEPS, save_total_limit=None, logging_steps=1, seed=7,
        lora=LoraSettings(r=4, alpha=8, dropout=0.0),
    )


def run_llava(out_dir: str, image_dir: str, records: list, metrics_callback=None, log=lambda _m: None):
    from training.llava.train import run_finetune

    return run_finetune(llava_config(), records, image_dir, out_dir, log=log, metrics_callback=metrics_callback)


def _llava_main(args: list[str], in_save: bool) -> None:
    out_dir, image_dir, records_path, signal, stop_step = args
    stop = int(stop_step)
    records = json.loads(Path(records_path).read_text())
    callback = None
    if in_save:
        from transformers import Trainer

        original = Trainer._save_optimizer_and_scheduler

        def save_then_hang(self, output_dir):  # the adapter of this checkpoint is on disk already
            if self.state.global_step == stop:
                signal_and_hang(signal)
            return original(self, output_dir)

        Trainer._save_optimizer_and_scheduler = save_then_hang
    else:

        def callback(event):
            if event["step"] == stop:
                signal_and_hang(signal)

    run_llava(out_dir, image_dir, records, metrics_callback=callback)


# ----------------------------------------------------------------------------- write without permission


def _write_table_main(args: list[str]) -> None:
    """Print {"ok": true} or {"type", "errno", "message"} of the error as one JSON line."""
    import pyarrow as pa
    from upath import UPath

    from pipeline_lib.tables import stage_table

    final, staging_dir, rows = UPath(args[0]), args[1], int(args[2])
    table = pa.Table.from_pylist(list(table_rows(rows, 2)), schema=table_schema())
    try:
        staged = stage_table(final.parent if staging_dir == "-" else UPath(staging_dir), table.schema, table)
        staged.commit(final)
    except OSError as exc:
        print(json.dumps({"type": type(exc).__name__, "errno": exc.errno, "message": str(exc)}))
        return
    print(json.dumps({"ok": True}))


def main(argv: list[str]) -> None:
    mode, args = argv[0], argv[1:]
    if mode in ("vqvae", "llava", "llava-in-save"):
        import torch

        torch.set_num_threads(1)  # same arithmetic as the parent test process
    if mode == "table":
        root, signal, rows, version = args
        materialize_table(root, int(rows), int(version), signal)
    elif mode == "direct":
        root, signal, rows, version = args
        stage_direct(root, int(rows), int(version), signal)
    elif mode == "vqvae":
        train_vqvae_run(args[0], float(args[1]), args[2] if len(args) > 2 else None)
    elif mode in ("llava", "llava-in-save"):
        _llava_main(args, in_save=mode == "llava-in-save")
    elif mode == "write-table":
        _write_table_main(args)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
