"""Train the depth VQ-VAE on N processes with torchrun, as the ``depth_vqvae`` asset does for
``vqvae.nproc_per_node`` > 1:

    python -m torch.distributed.run --standalone --nproc_per_node=N -m training.vqvae.launch --job job.json

Parent side (``launch_training``): writes the job file into the training folder, starts
torchrun in a process group of its own with ``PTOK_PARENT_PID`` (each rank ends itself if the
launcher dies, perception_tokens/parent_watch.py), streams its output to ``log``, ends the
group if the launcher is interrupted, and reads back the result rank 0 wrote.

Rank side (``main``): joins the process group (gloo on CPU, nccl on GPU), walks the depth
maps of the ``pseudo_depth`` Parquet files, decodes only its slice of each global batch, and
trains with :func:`training.vqvae.train.train_vqvae` (DDP gradients, codebook statistics
summed by training/vqvae/distributed.py). Rank 0 writes the checkpoint and ``launch_result.json``
(each atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Callable, Iterator, Sequence

from perception_tokens.buckets import hash_bucket

ROOT = Path(__file__).resolve().parents[2]
JOB_NAME = "launch_job.json"
RESULT_NAME = "launch_result.json"
INIT_STATE_NAME = "init_state.safetensors"


def is_holdout(image_id: str, fraction: float) -> bool:
    """Whether ``image_id`` is in the held-out part (a fixed hash bucket of its id)."""
    return hash_bucket(image_id, 10_000) < int(round(fraction * 10_000))


# vqvae.data -> the (dataset, split) whose maps train the tokenizer; None: every row of pseudo_depth.
# ade20k_train is the reference's: every map in ADE_depth/, made from the ADE20K training images
# (AiT/vae/configs/depth/ait_depth_vqvae.py:21 data_root, AiT/vae/dataset/custom.py:51 listdir)
# refer_train is Perceptio's: the maps of the images its LLM is fine-tuned on (sec. 3.2), the train-split
# COCO images of RefCOCO/+/g (refcoco_images rows of split "train")
TRAINING_DATA = {"all_datasets": None, "ade20k_train": ("ade20k", "training"), "refer_train": ("refcoco", "train")}


def parquet_depth_pngs(paths: Sequence, *, holdout: bool, fraction: float,
                       only: tuple[str, str] | None = None, column: str = "depth_png") -> Iterator[bytes]:
    """PNG bytes of the ``pseudo_depth`` rows of the training (or held-out) part, file by file and
    row by row: the order every process (and the in-process trainer) sees. ``only``: keep the
    rows of that (dataset, split) alone (``TRAINING_DATA``). ``column="image_id"``: the same rows'
    ids instead (counting them reads no PNG bytes)."""
    import pyarrow.parquet as pq
    from upath import UPath

    columns = sorted({"image_id", column} | ({"dataset", "split"} if only is not None else set()))
    for path in paths:
        with UPath(path).open("rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(columns=columns):
                for row in batch.to_pylist():
                    if only is not None and (row["dataset"], row["split"]) != tuple(only):
                        continue
                    if is_holdout(row["image_id"], fraction) == holdout:
                        yield row[column]


def launch_command(nproc: int, job_path: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "training.vqvae.launch", "--job", str(job_path)]  # -m: no training/vqvae/ on sys.path


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM the launcher's group (torchrun and its ranks), SIGKILL what is left after 10 s.

    Waits for every member, not only torchrun: torchrun may exit on SIGTERM while a rank is
    still unwinding, and a rank left behind would hold its GPU and its files."""
    import psutil

    try:
        members = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        members = []
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        for member in members:  # one that left the group still belongs to this launch
            try:
                member.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, members = psutil.wait_procs(members, timeout=wait_s)
        if not members:
            break
    try:
        proc.wait(timeout=5)  # reap torchrun itself
    except subprocess.TimeoutExpired:
        pass


def launch_training(model_config, train_config, tables: Sequence, out_dir: str | os.PathLike, *, nproc: int,
                    holdout_fraction: float, resume: bool = True, init_state=None,
                    log: Callable[[str], None] = print, only: tuple[str, str] | None = None):
    """Train with ``nproc`` processes under torchrun; returns the ``VQVAETrainResult`` of rank 0."""
    from perception_tokens.parent_watch import parent_env
    from training.vqvae.checkpoint import atomic_write, write_json
    from training.vqvae.train import VQVAETrainResult

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    init_path = None
    if init_state is not None:
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in init_state.items()}
        init_path = atomic_write(out / INIT_STATE_NAME, lambda tmp: save_file(tensors, tmp))
    job = {"model_config": model_config.to_dict(), "train_config": train_config.to_dict(), "tables": [str(t) for t in tables],
           "holdout_fraction": holdout_fraction, "only": list(only) if only else None, "out_dir": str(out), "resume": resume,
           "init_state": str(init_path) if init_path else None}
    job_path = write_json(out / JOB_NAME, job)
    result_path = out / RESULT_NAME
    result_path.unlink(missing_ok=True)  # never read an earlier launch's result
    command = launch_command(nproc, job_path)
    log(" ".join(command))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **parent_env(),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    tail: deque[str] = deque(maxlen=40)
    try:
        for line in proc.stdout:
            tail.append(line.rstrip())
            log(tail[-1])
        code = proc.wait()
    except BaseException:  # interrupted (run cancelled, Ctrl-C): no orphaned ranks
        _end_group(proc)
        raise
    if code != 0:
        raise RuntimeError(f"VQ-VAE training on {nproc} processes failed (exit code {code}, folder {out}); last output:\n"
                           + "\n".join(tail))
    if not result_path.exists():
        raise RuntimeError(f"VQ-VAE training on {nproc} processes ended without {result_path}")
    r = json.loads(result_path.read_text())
    return VQVAETrainResult(out_dir=out, weights_path=Path(r["weights_path"]), config_path=Path(r["config_path"]),
                            step=r["step"], epoch=r["epoch"], loss_history=r["loss_history"],
                            epoch_metrics=r["epoch_metrics"], resumed_from_step=r["resumed_from_step"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, help="job JSON written by launch_training")
    args = parser.parse_args(argv)

    from perception_tokens.parent_watch import exit_when_parent_dies

    exit_when_parent_dies()  # a killed launcher must not leave ranks training as orphans

    import torch
    import torch.distributed as dist

    from perception_tokens.depth import decode_png
    from training.vqvae.checkpoint import write_json
    from training.vqvae.model import VQVAEConfig
    from training.vqvae.train import VQVAETrainConfig, resolve_device, train_vqvae

    job = json.loads(Path(args.job).read_text())
    train_config = VQVAETrainConfig.from_dict(job["train_config"])
    on_gpu = resolve_device(train_config.device).type == "cuda"
    if on_gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if on_gpu else "gloo")
    try:
        init_state = None
        if job["init_state"]:
            from safetensors.torch import load_file

            init_state = load_file(job["init_state"])
        tables, fraction, only = job["tables"], job["holdout_fraction"], job.get("only")
        result = train_vqvae(
            VQVAEConfig.from_dict(job["model_config"]), train_config,
            lambda: parquet_depth_pngs(tables, holdout=False, fraction=fraction, only=tuple(only) if only else None),
            job["out_dir"], log=lambda m: print(m, flush=True), resume=job["resume"], progress=False,
            init_state=init_state, decode=decode_png,
        )
        if dist.get_rank() == 0:
            write_json(Path(job["out_dir"]) / RESULT_NAME, {
                "weights_path": str(result.weights_path), "config_path": str(result.config_path), "step": result.step,
                "epoch": result.epoch, "loss_history": result.loss_history, "epoch_metrics": result.epoch_metrics,
                "resumed_from_step": result.resumed_from_step, "world_size": dist.get_world_size()})
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
