"""Seeded, resumable trainer for the depth VQ-VAE.

Files written to ``out_dir`` (each atomically):
  model.safetensors + config.json   the model (``load_vqvae`` reads these), every epoch end
  train_state.pt                    resume point: model, optimizer, scheduler, step, epoch,
                                    batches done in the current epoch, RNG state, epoch
                                    accumulators, loss history. Plain tensors / dicts / lists /
                                    numbers only, read back with ``torch.load(weights_only=True)``
  train_config.json                 the training config
  training_summary.json             per-epoch metrics, at the end

Determinism: the model is built after ``torch.manual_seed(seed)``; epoch ``e`` visits maps
in an order fixed by ``seed + e`` (bounded-buffer shuffle, or a full permutation); the torch RNG (k-means seeds,
dead-code restarts) is checkpointed. A run interrupted after a checkpoint and resumed with
the same configs therefore ends with the same weights as an uninterrupted run. Resuming in
the middle of an epoch re-reads (but does not train on) the batches already done.

Data parallel (under ``torchrun``, process group initialised by the caller, see
training/vqvae/launch.py): ``batch_size`` is the global batch. Every rank walks the same
shuffled stream and takes its consecutive slice of each global batch, rank 0 first (sizes
differ by at most one); the loss is weighted by the slice's share, so DDP's gradient average
is the gradient of the global batch's mean, and the codebook helpers of
training/vqvae/distributed.py sum the EMA statistics over ranks. The result is the one-process
run on the same global batches with the sums in other orders: with ``dtype`` float64 within
``distributed.order_drift_bound``; in float32 that rounding can grow to 1e-4 in a few steps. Rank 0 alone writes files
and logs. A last global batch with fewer maps than ranks is skipped, with a warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from training.vqvae.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_state_strict, save_vqvae, write_json
from training.vqvae.checkpoint import load_vqvae as load_vqvae  # re-export: train + load in one place
from training.vqvae.data import batched, buffered_shuffle, model_input, permuted
from training.vqvae.distributed import all_reduce_sum, gather_rows, is_rank0, world_size
from training.vqvae.model import DepthVQVAE, VQVAEConfig
from training.vqvae.train_config import TRAIN_DTYPES, VQVAETrainConfig, VQVAETrainResult, resolve_device
from training.vqvae.train_state import (
    RESUMABLE_CHANGES,
    STATE_FORMAT,
    STATE_NAME,
    config_differences,
    EpochAccumulator,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
)

__all__ = ["STATE_NAME", "VQVAETrainConfig", "VQVAETrainResult", "load_vqvae", "rank_slice", "resolve_device", "train_vqvae"]

def rank_slice(n: int, world: int, rank: int) -> slice:
    """This rank's consecutive part of a global batch of ``n`` (the first ``n % world`` ranks get one more)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


# ----------------------------------------------------------------------------- training


def train_vqvae(
    model_config: VQVAEConfig,
    train_config: VQVAETrainConfig,
    train_maps: Callable[[], Iterable[np.ndarray]],
    out_dir: str | os.PathLike,
    *,
    log: Callable[[str], None] = print,
    resume: bool = True,
    progress: bool = True,
    init_state: dict[str, torch.Tensor] | None = None,
    decode: Callable[[Any], np.ndarray] | None = None,
) -> VQVAETrainResult:
    """Train a DepthVQVAE on uint8 depth maps; returns where the weights are and the curves.

    ``train_maps()`` is called once per epoch and must yield the same maps in the same
    order each time (the trainer shuffles them). With ``resume`` and an existing
    ``train_state.pt`` in ``out_dir`` training continues from it (the model config and the
    train config except epochs / checkpoint_every_steps / device must match); without
    ``resume`` any previous state there is overwritten. ``init_state`` (a state dict of
    this architecture, e.g. a reference ``vae-final.pt``'s weights) replaces the seeded
    initial weights, keys matched strictly; with ``epochs`` 0 the model is saved as is.
    ``decode``: ``train_maps()`` yields encoded items (PNG bytes) and each rank decodes only
    its slice of a batch.
    """
    tc = train_config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_NAME
    device = resolve_device(tc.device)
    world, rank = world_size(), (torch.distributed.get_rank() if world_size() > 1 else 0)
    if world > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if not is_rank0():
        log = lambda _message: None  # noqa: E731 (rank 0 speaks for all)
        progress = False

    if tc.epochs == 0 and init_state is None:
        raise ValueError("epochs 0 trains nothing: give initial weights (init_state) to adopt, or epochs >= 1")
    torch.manual_seed(tc.seed)
    model = DepthVQVAE(model_config)
    if init_state is not None:
        load_state_strict(model, init_state, "initial weights")
    dtype = TRAIN_DTYPES[tc.dtype]
    model = model.to(device, dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=tc.lr_decay_gamma)
    acc = EpochAccumulator(model_config.codebook_size)
    step = epoch = batches_in_epoch = 0
    loss_history: list[dict[str, float]] = []
    epoch_metrics: list[dict[str, float]] = []
    resumed_from: int | None = None

    if resume and state_path.exists():
        state = load_state(state_path)
        diffs = config_differences(state["model_config"], model_config.to_dict())
        diffs += config_differences(state["train_config"], tc.to_dict(), RESUMABLE_CHANGES)
        if diffs:
            raise ValueError(
                f"{state_path}: cannot resume, configs differ ({'; '.join(diffs)}); "
                "use resume=False or another out_dir"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, batches_in_epoch = int(state["step"]), int(state["epoch"]), int(state["batches_in_epoch"])
        acc.load_state(state["epoch_accumulator"])
        loss_history = list(state["loss_history"])
        epoch_metrics = list(state["epoch_metrics"])
        set_rng_state(state["rng"])
        resumed_from = step
        log(f"resuming from {state_path}: step {step}, epoch {epoch}, {batches_in_epoch} batches into it")
    elif state_path.exists():
        log(f"resume=False: ignoring and overwriting {state_path}")
    # DDP averages gradients; the EMA codebook syncs itself (config.sync_codebook), so buffers are not
    # broadcast per step (torch >= 2.13 names that forward_sync_buffers; torch>=2.4 is supported)
    net = model
    if world > 1:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*broadcast_buffers.*deprecated", category=FutureWarning)
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          broadcast_buffers=False)

    if is_rank0():
        write_json(out / "train_config.json", tc.to_dict())
    log(
        f"depth VQ-VAE: {model.num_parameters():,} parameters, {model_config.image_size}px -> "
        f"{model_config.grid_size}x{model_config.grid_size} codes of {model_config.codebook_size}, device {device}"
    )

    def checkpoint() -> None:
        if not is_rank0():
            return
        save_state(
            state_path,
            {
                "format": STATE_FORMAT,
                "model_config": model_config.to_dict(),
                "train_config": tc.to_dict(),
                "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "epoch": epoch,
                "batches_in_epoch": batches_in_epoch,
                "epoch_accumulator": acc.to_state(),
                "loss_history": loss_history,
                "epoch_metrics": epoch_metrics,
                "rng": rng_state(),
            },
        )

    while epoch < tc.epochs:
        model.train()
        order_rng = np.random.default_rng(tc.seed + epoch)
        if tc.shuffle == "permutation":
            stream = permuted(train_maps(), order_rng)
        else:
            stream = buffered_shuffle(train_maps(), tc.shuffle_buffer, order_rng)
        skip = batches_in_epoch
        seen = 0
        bar = tqdm(desc=f"vqvae epoch {epoch + 1}/{tc.epochs}", unit="batch", initial=skip, disable=not progress)
        for chunk in batched(stream, tc.batch_size):
            if tc.drop_last and len(chunk) < tc.batch_size:
                break
            if len(chunk) < world:
                log(f"warning: epoch {epoch}: last batch of {len(chunk)} maps skipped (fewer than {world} ranks)")
                break
            seen += 1
            if seen <= skip:  # done before the interruption
                continue
            mine = chunk if world == 1 else chunk[rank_slice(len(chunk), world, rank)]
            try:
                x = model_input([decode(m) for m in mine] if decode else mine, model_config).to(device, dtype)
            except (TypeError, ValueError) as e:
                raise type(e)(f"epoch {epoch}, batch {seen} (after shuffling): {e}") from e
            result = net(x)
            share = len(mine) / len(chunk)  # the slice's weight in the global batch's mean
            optimizer.zero_grad(set_to_none=True)
            (result.loss if world == 1 else result.loss * (share * world)).backward()
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            optimizer.step()
            if tc.lr_decay_every and (seen - 1) % tc.lr_decay_every == 0:
                scheduler.step()
            step += 1
            batches_in_epoch += 1
            losses = torch.stack([result.loss.detach(), result.recon_loss.detach(), result.commit_loss.detach()])
            codes = result.codes
            if world > 1:  # the global batch's means and codes, as one process would log them
                losses = all_reduce_sum(losses.double() * share)
                codes = gather_rows(codes)
            loss, recon, commit = (float(v) for v in losses.tolist())
            row = {"step": step, "epoch": epoch, "loss": loss, "recon": recon, "commit": commit, "lr": float(lr)}
            loss_history.append(row)
            acc.add(row["loss"], row["recon"], row["commit"], codes, model.vq.last_restarted)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}", recon=f"{row['recon']:.4f}")
            if tc.checkpoint_every_steps and step % tc.checkpoint_every_steps == 0:
                checkpoint()
        bar.close()
        if seen == 0:
            short = f" (drop_last: fewer than batch_size {tc.batch_size} maps)" if tc.drop_last else ""
            raise ValueError(f"train_maps() yielded no depth maps for this epoch{short}")

        summary = {"epoch": epoch, "step": step, "lr": float(optimizer.param_groups[0]["lr"]), **acc.summary()}
        epoch_metrics.append(summary)
        log(
            f"epoch {epoch + 1}/{tc.epochs}: loss {summary['loss']:.5f} recon {summary['recon']:.5f} "
            f"commit {summary['commit']:.5f} usage {summary['usage']}/{model_config.codebook_size} "
            f"perplexity {summary['perplexity']:.1f} restarts {summary['dead_code_restarts']} lr {summary['lr']:.2e}"
        )
        if not tc.lr_decay_every:
            scheduler.step()
        epoch += 1
        batches_in_epoch = 0
        acc = EpochAccumulator(model_config.codebook_size)
        checkpoint()
        if is_rank0():
            save_vqvae(model, out, metadata={"step": str(step), "epoch": str(epoch)})

    if is_rank0():
        weights = save_vqvae(model, out, metadata={"step": str(step), "epoch": str(epoch)})
        write_json(out / "training_summary.json", {"step": step, "epoch": epoch, "epoch_metrics": epoch_metrics})
    else:
        weights = out / WEIGHTS_NAME
    return VQVAETrainResult(
        out_dir=out,
        weights_path=weights,
        config_path=out / CONFIG_NAME,
        step=step,
        epoch=epoch,
        loss_history=loss_history,
        epoch_metrics=epoch_metrics,
        resumed_from_step=resumed_from,
    )
