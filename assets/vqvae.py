"""``depth_vqvae``: train the depth tokenizer on pseudo-depth maps and measure it on held-out maps.

Weights live beside the tables (safetensors + config JSON); the asset's table is a one-row
manifest pointing at them. The training folder is keyed by the config and the input's data
version, so an interrupted run resumes from its last checkpoint when re-materialized.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import cv2
import dagster as dg
import numpy as np

from assets.plots import line_plot_png
from assets.versioning import code_version
from pipeline_lib.executors import gpu_op_tags
from perception_tokens import schemas
from perception_tokens.depth import decode_png
from perception_tokens.paths import file_sha256
from pipeline_lib.emit import emit_table
from pipeline_lib.lineage import input_data_versions
from pipeline_lib.metadata import png_markdown
from pipeline_lib.resources import StorageResource
from pipeline_lib.run_tags import is_forced
from pipeline_lib.tables import TableHandle
from training.weights_id import tensors_digest

GROUP = "depth"


def depth_pngs(table: TableHandle, *, holdout: bool, fraction: float, data: str = "all_datasets", column: str = "depth_png"):
    """PNG bytes (or another ``column``) of the ``vqvae.data`` maps of the training or held-out part,
    in the order the torchrun ranks of ``nproc_per_node`` > 1 read them."""
    from training.vqvae.launch import TRAINING_DATA, parquet_depth_pngs  # torch: only when the asset runs

    return parquet_depth_pngs(table.paths, holdout=holdout, fraction=fraction, only=TRAINING_DATA[data], column=column)


def depth_maps(table: TableHandle, *, holdout: bool, fraction: float, data: str = "all_datasets"):
    """Decoded uint8 depth maps of :func:`depth_pngs`."""
    for png in depth_pngs(table, holdout=holdout, fraction=fraction, data=data):
        yield decode_png(png)


_FINGERPRINTS: dict[tuple, str] = {}


def init_checkpoint_fingerprint(path: str | None) -> str | None:
    """sha256 of the file(s) behind ``vqvae.init_checkpoint``, folded into the code version so a
    checkpoint replaced at the same path marks ``depth_vqvae`` stale. A project checkpoint
    directory is its weights file plus ``config.json`` (the config fixes the architecture).
    Hashing streams 1 MiB chunks and is remembered per (path, size, mtime, ctime, inode), so a code
    location reload does not re-read an unchanged file. A missing file or a URL fingerprints
    by name only: the asset itself then fails naming the path."""
    if path is None:
        return None
    if "://" in path:
        return f"url:{path}"
    from training.vqvae.checkpoint import CONFIG_NAME, WEIGHTS_NAME  # torch: only when a checkpoint is set

    p = Path(path)
    if p.is_dir():
        files = [p / WEIGHTS_NAME, p / CONFIG_NAME]
    else:
        files = [p, p.parent / CONFIG_NAME] if p.suffix == ".safetensors" else [p]
    h = hashlib.sha256()
    for f in files:
        try:
            st = f.stat()
        except FileNotFoundError:
            h.update(f"missing:{f.name}".encode())
            continue
        key = (str(f.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        if key not in _FINGERPRINTS:
            _FINGERPRINTS[key] = file_sha256(f)
        h.update(f"{f.name}:{_FINGERPRINTS[key]}".encode())
    return h.hexdigest()


def vqvae_model_config(vq, init_config=None):
    """The preset's model config (``aurora``: the reference model) with ``overrides`` applied;
    with an init checkpoint, that checkpoint's architecture instead of the preset's."""
    from training.vqvae import VQVAEConfig

    if init_config is not None:
        base = init_config
    else:
        base = VQVAEConfig.tiny() if vq.preset == "tiny" else VQVAEConfig.aurora()
    return VQVAEConfig.from_dict({**base.to_dict(), **vq.overrides})


def read_init_checkpoint(vq, path: str):
    """(model config, state dict, sha256) of ``vqvae.init_checkpoint`` (reference .pt or project dir)."""
    from training.vqvae.checkpoint import resolve_weights
    from training.vqvae.reference_format import is_project_checkpoint, read_any_checkpoint

    init_config, state = read_any_checkpoint(path, vq.overrides.get("image_size"))
    weights = resolve_weights(path)[0] if is_project_checkpoint(path) else Path(path)
    return vqvae_model_config(vq, init_config), state, file_sha256(weights)


def build_vqvae_assets(settings) -> list:
    vq = settings.vqvae
    init_fingerprint = init_checkpoint_fingerprint(settings.resolve(vq.init_checkpoint))
    # without an init checkpoint the version is what it was before the fingerprint existed
    # nproc_per_node is left out: N processes train what one does (within float tolerance), as
    # the engine choice is left out of the per-image stages' versions
    # dtype float32 (the default) is left out too, so adding the field kept existing versions
    vq_version = vq.model_dump(mode="json", exclude={"nproc_per_node"} | ({"dtype"} if vq.dtype == "float32" else set()))
    version_inputs = (vq_version,) if init_fingerprint is None else (vq_version, {"init_checkpoint_sha256": init_fingerprint})

    @dg.asset(
        description="VQ-VAE depth tokenizer (AiT architecture, EMA codebook of 128 codes, 10x10 grid) trained on "
        "pseudo_depth; one manifest row pointing at safetensors weights, with held-out quality metrics.",
        code_version=code_version("1", *version_inputs),
        kinds={"pytorch", "parquet"},
        group_name=GROUP,
        ins={"pseudo_depth": dg.AssetIn()},
        pool="accelerator",
        op_tags=gpu_op_tags(settings.execution),
    )
    def depth_vqvae(context: dg.AssetExecutionContext, storage: StorageResource, pseudo_depth: TableHandle):
        from training.vqvae import VQVAETrainConfig, evaluate_vqvae, load_vqvae, reconstruction_examples, train_vqvae
        from training.vqvae.metrics import examples_to_grid

        init_path = settings.resolve(vq.init_checkpoint)
        init_state, init_sha = None, None
        if init_path:
            model_cfg, init_state, init_sha = read_init_checkpoint(vq, init_path)
            context.log.info(f"initial weights from {init_path} (sha256 {init_sha[:16]}): {'adopted' if vq.epochs == 0 else 'fine-tuned'}")
        else:
            model_cfg = vqvae_model_config(vq)
        train_cfg = VQVAETrainConfig(
            epochs=vq.epochs, batch_size=vq.batch_size, lr=vq.lr, lr_decay_gamma=vq.lr_decay_gamma, seed=vq.seed,
            lr_decay_every=vq.lr_decay_every, drop_last=vq.drop_last,
            checkpoint_every_steps=vq.checkpoint_every_steps, device=vq.device, dtype=vq.dtype, shuffle=vq.shuffle,
        )
        # the training folder (and so what a re-run resumes) is keyed by everything the weights
        # depend on: code version (logic + config), model and training settings, and the data
        # version of every pseudo_depth partition
        inputs = input_data_versions(context, context.asset_key)
        code = context.assets_def.code_versions_by_key.get(context.asset_key)
        run_key = hashlib.sha256(json.dumps([code, model_cfg.to_dict(), train_cfg.to_dict(), inputs, init_sha], sort_keys=True, default=str).encode()).hexdigest()[:16]
        out_dir = Path(storage.local_files_dir("depth_vqvae", run_key))
        # --force trains again from the seed instead of resuming (a finished run's state would
        # train nothing); a deterministic run then writes the same weights and the same data version
        resume = not is_forced(context)
        context.log.info(f"training VQ-VAE in {out_dir} " + ("(resumes if a checkpoint is there)" if resume else "(forced: from scratch)"))

        from training.vqvae.launch import TRAINING_DATA

        n_training_maps = sum(1 for _ in depth_pngs(pseudo_depth, holdout=False, fraction=vq.holdout_fraction, data=vq.data,
                                                    column="image_id"))
        context.log.info(f"{n_training_maps} training maps ({vq.data}), epoch order: {vq.shuffle}")
        if vq.nproc_per_node > 1:  # torchrun: DDP ranks, codebook statistics summed over them
            from training.vqvae.launch import launch_training

            if not model_cfg.sync_codebook:
                context.log.warning(f"{vq.nproc_per_node} processes with sync_codebook false (the reference's DDP): each rank "
                                    "keeps its own EMA codebook and rank 0's is saved; overrides {sync_codebook: true} syncs them")
            result = launch_training(model_cfg, train_cfg, pseudo_depth.paths, out_dir, nproc=vq.nproc_per_node,
                                     holdout_fraction=vq.holdout_fraction, resume=resume, init_state=init_state,
                                     log=context.log.info, only=TRAINING_DATA[vq.data])
        else:
            # PNG bytes, decoded per batch: a full permutation holds the epoch's encoded maps, not decoded ones
            result = train_vqvae(
                model_cfg, train_cfg,
                lambda: depth_pngs(pseudo_depth, holdout=False, fraction=vq.holdout_fraction, data=vq.data),
                out_dir, log=context.log.info, resume=resume, init_state=init_state, decode=decode_png,
            )
        model = load_vqvae(out_dir)
        # holdout_fraction 0 (aurora trains on every map): quality is measured on all maps
        held_out = vq.holdout_fraction > 0
        metrics = evaluate_vqvae(model, depth_maps(pseudo_depth, holdout=held_out, fraction=vq.holdout_fraction, data=vq.data),
                                 seed=vq.seed)
        metrics = {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in metrics.items()}
        metrics["usage_fraction"] = metrics["usage"] / model_cfg.codebook_size
        context.log.info(f"held-out metrics: {metrics}")

        examples = reconstruction_examples(model, depth_maps(pseudo_depth, holdout=held_out, fraction=vq.holdout_fraction, data=vq.data), n=4)
        grid = examples_to_grid(examples, size=96) if examples else None
        losses = [h["loss"] for h in result.loss_history if "loss" in h]
        curve = line_plot_png({"loss": losses}, "step", "loss", "VQ-VAE training loss", log_y=True)

        weights = Path(result.weights_path)
        digest = tensors_digest(weights)  # same tensors, same id, however the file's header was written
        reference_file = None
        if model_cfg.architecture == "aurora":  # the reference's own file format beside ours
            from training.vqvae.reference_format import save_reference_checkpoint

            reference_file = save_reference_checkpoint(model, out_dir / "vae-final.pt")
        row = {
            "model_id": digest[:16], "kind": "depth_vqvae", "path": str(out_dir), "weights_file": weights.name,
            "sha256": digest, "config_json": json.dumps({"model": model_cfg.to_dict(), "train": train_cfg.to_dict()}),
            "metrics_json": json.dumps(metrics), "inputs_json": json.dumps(inputs),
        }  # content only: the row is hashed into the data version, so the time goes to metadata
        meta = {
            "created_at": dg.MetadataValue.text(dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
            **{k: dg.MetadataValue.float(float(metrics[k])) for k in ("abs_rel", "rmse", "delta1", "perplexity", "closest_point_agreement", "usage_fraction")},
            "codes_used": dg.MetadataValue.int(int(metrics["usage"])),
            "heldout_images": dg.MetadataValue.int(int(metrics["n_images"])),
            "steps": dg.MetadataValue.int(result.step),
            "processes": dg.MetadataValue.int(vq.nproc_per_node),
            "training_data": dg.MetadataValue.text(vq.data),
            "training_maps": dg.MetadataValue.int(n_training_maps),
            "epoch_order": dg.MetadataValue.text(f"{vq.shuffle} (seed + epoch)"),
            "resumed_from_step": dg.MetadataValue.int(int(result.resumed_from_step or 0)),
            "loss_curve": dg.MetadataValue.md(png_markdown(curve, "loss curve")),
            "weights": dg.MetadataValue.path(str(weights)),
            "quality_measured_on": dg.MetadataValue.text("held-out maps" if held_out else "all maps (no hold-out)"),
        }
        if reference_file is not None:
            meta["reference_checkpoint"] = dg.MetadataValue.path(str(reference_file))
        if init_path:
            meta["init_checkpoint"] = dg.MetadataValue.path(init_path)
        if grid is not None:
            meta["reconstructions"] = dg.MetadataValue.md(
                "input | reconstruction | abs error\n\n" + png_markdown(cv2.imencode(".png", grid)[1].tobytes(), "reconstructions")
            )
        return emit_table(context, storage, schemas.MODEL_MANIFEST_SCHEMA, [row], config=row | {"metrics_json": None}, metadata=meta)

    @dg.asset_check(asset=depth_vqvae, description=f"Answering 'which point is closest' from decoded tokens agrees with the input depth on >= {vq.min_closest_point_agreement:.0%} of held-out images (Aurora: 95.7%).")
    def vqvae_closest_point_upper_bound(depth_vqvae: TableHandle) -> dg.AssetCheckResult:
        m = json.loads(depth_vqvae.read(columns=["metrics_json"])["metrics_json"][0].as_py())
        value = m["closest_point_agreement"]
        return dg.AssetCheckResult(passed=bool(value >= vq.min_closest_point_agreement), metadata={"agreement": float(value), "threshold": vq.min_closest_point_agreement})

    @dg.asset_check(asset=depth_vqvae, description=f"At least {vq.min_codebook_usage:.0%} of the codebook is used on held-out maps.")
    def vqvae_codebook_usage(depth_vqvae: TableHandle) -> dg.AssetCheckResult:
        m = json.loads(depth_vqvae.read(columns=["metrics_json"])["metrics_json"][0].as_py())
        return dg.AssetCheckResult(passed=bool(m["usage_fraction"] >= vq.min_codebook_usage),
                                   metadata={"usage_fraction": float(m["usage_fraction"]), "perplexity": float(m["perplexity"])})

    return [depth_vqvae], [vqvae_closest_point_upper_bound, vqvae_codebook_usage]
