"""``lora_adapter``: LoRA fine-tune of LLaVA on the curriculum, in a separate process via Dagster Pipes.

The asset writes the training config, launches ``training/pipes_worker.py`` (``torchrun``
when more than one process per node), streams the trainer's logs back, and records a
manifest row pointing at the adapter (saved with its processor and token map). The run
folder is keyed by config and curriculum version, so a re-materialization after an
interruption resumes from the last checkpoint.
"""

import datetime as dt
import hashlib
import json
import shutil
import sys
from pathlib import Path

import dagster as dg

from assets.curriculum_export import LlavaExport
from assets.versioning import code_version
from pipeline_lib.executors import gpu_op_tags
from perception_tokens import schemas
from training.finetune.adapter_folder import FINETUNE_CONFIG_FILE
from perception_tokens.parent_watch import parent_env
from training.weights_id import tensors_digest
from pipeline_lib.emit import emit_table
from pipeline_lib.folders import run_dir as run_folder
from pipeline_lib.lineage import input_data_versions
from pipeline_lib.metadata import png_markdown
from pipeline_lib.resources import StorageResource
from pipeline_lib.settings_experiment import variant_asset_name
from pipeline_lib.tables import TableHandle

GROUP = "finetune"
ENTRY = Path(__file__).resolve().parents[1] / "training" / "pipes_worker.py"


def finetune_config_dict(finetune_settings) -> dict:
    """The training config (JSON for the worker) built from the ``finetune`` settings section, no field copied by hand."""
    from training.finetune.config import FinetuneConfig  # torch: only when the asset runs

    return FinetuneConfig.from_settings(finetune_settings.model_dump()).to_dict()


def launch_command(finetune_settings, args: list[str]) -> list[str]:
    """The worker under ``torchrun`` when more than one process per node, else plain Python."""
    nproc = finetune_settings.nproc_per_node
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(ENTRY), *args]
    return [sys.executable, str(ENTRY), *args]


def build_finetune_assets(settings) -> tuple[list, list]:
    """``lora_adapter``, or one ``lora_adapter__<variant>`` per experiment variant that fine-tunes."""
    if not settings.experiment:
        return build_lora_adapter(settings)
    from assets.curriculum import fine_tuned_variants

    assets, checks = [], []
    for variant in fine_tuned_variants(settings):
        a, c = build_lora_adapter(settings.variant_settings(variant), variant)
        assets += a
        checks += c
    return assets, checks


def build_lora_adapter(settings, variant: str | None = None) -> tuple[list, list]:
    finetune_settings = settings.finetune
    name = variant_asset_name("lora_adapter", variant)
    reconstruction = bool(finetune_settings.depth_losses.get("reconstruction"))

    @dg.asset(
        name=name,
        description="LoRA adapter for the model family of finetune.family (LLaVA, Qwen2.5-VL, Qwen2-VL; a finetune.vpt run "
        "trains VPT's two stages, both stages' losses in metadata, its DINOv2 + projector saved beside the adapter) trained on the curriculum in order (perception tokens added to the vocabulary, "
        "new embedding rows trainable, projector at its own LR, vision tower frozen). Manifest row -> adapter folder with "
        "processor and token map; loss curve and well-formed depth-span rate before/after in metadata.",
        code_version=code_version("1", finetune_settings),
        kinds={"pytorch", "parquet"},
        group_name=GROUP,
        ins={"curriculum": dg.AssetIn(variant_asset_name("curriculum", variant)),
             # the soft-merge reconstruction loss decodes with the trained VQ-VAE (Perceptio sec. 3.4.3): an input only then,
             # so every other run's graph and versions stay as they were
             **({"depth_vqvae": dg.AssetIn()} if reconstruction else {})},
        pool="accelerator",
        op_tags=gpu_op_tags(settings.execution),
    )
    def lora_adapter(context: dg.AssetExecutionContext, storage: StorageResource, pipes_subprocess_client: dg.PipesSubprocessClient,
                     curriculum: TableHandle, **vqvae: TableHandle):
        # the export travels in the curriculum's rows, checked against its sha256: never the instance's latest metadata
        export = LlavaExport.from_table(curriculum)
        records_path = export.verified_json(storage.root)
        image_dir = export.image_folder(storage.root)
        config = finetune_config_dict(finetune_settings)
        inputs = input_data_versions(context, context.asset_key)
        code = context.assets_def.code_versions_by_key.get(context.asset_key)
        run_key = hashlib.sha256(json.dumps([code, config, inputs, finetune_settings.nproc_per_node, finetune_settings.family], sort_keys=True).encode()).hexdigest()[:16]
        run_dir = run_folder(storage.root, name, run_key)
        # the trainer reads the records from the run folder, so a later curriculum export cannot change a resumed run
        if not (run_dir / "curriculum.json").exists():
            shutil.copyfile(records_path, run_dir / ".curriculum.json.tmp")
            (run_dir / ".curriculum.json.tmp").rename(run_dir / "curriculum.json")
        (run_dir / "finetune_config.json").write_text(json.dumps(config, indent=1))
        args = ["--config", str(run_dir / "finetune_config.json"), "--records", str(run_dir / "curriculum.json"),
                "--image-dir", str(image_dir), "--out", str(run_dir), "--span-samples", str(finetune_settings.span_samples)]
        if finetune_settings.family:
            args += ["--family", finetune_settings.family]
        if "depth_vqvae" in vqvae:  # the manifest row names the VQ-VAE folder
            args += ["--vqvae", str(vqvae["depth_vqvae"].read(columns=["path"])["path"][0].as_py())]
        command = launch_command(finetune_settings, args)
        context.log.info(" ".join(command))
        invocation = pipes_subprocess_client.run(command=command, context=context, env={"PYTHONUNBUFFERED": "1", **parent_env()})
        messages = invocation.get_custom_messages()
        if not messages:
            raise RuntimeError(f"fine-tune process reported no result; see its logs (run folder {run_dir})")
        summary = messages[-1]
        adapter_dir = Path(summary["adapter_dir"])
        weights = adapter_dir / "adapter_model.safetensors"
        digest = tensors_digest(weights)  # same tensors, same id, however the file's header was written
        # the row holds what the adapter is; how fast this run was (tokens_per_s, step_time_s,
        # train_seconds) and when (created_at) go to metadata, out of the data version
        metrics = {k: summary[k] for k in ("final_loss", "steps", "span_rate_before", "span_rate_after", "world_size",
                                           "span_samples")}
        losses = [loss for _, loss in summary["loss_history"]]
        metrics["first_loss"] = losses[0] if losses else None
        if finetune_settings.segmentation.get("enabled"):  # Perceptio: the head's loss and the output order
            seg = [loss for _, loss in summary.get("seg_loss_history", [])]
            metrics.update(segmentation=True, seg_loss_first=seg[0] if seg else None, seg_loss_last=seg[-1] if seg else None,
                           **{k: summary[k] for k in ("order_rate_before", "order_rate_after", "order_samples")})
        stages = summary.get("stages")  # a VPT run: its align and fine-tune stages' (step, loss)
        if stages:
            metrics["stage_losses"] = {stage: first_and_final(h) for stage, h in stages.items()}
        row = {
            "model_id": digest[:16], "kind": "lora_adapter", "path": str(adapter_dir), "weights_file": weights.name,
            "sha256": digest, "config_json": json.dumps(config),
            "metrics_json": json.dumps(metrics),
            "inputs_json": json.dumps({**inputs, "base_checkpoint": finetune_settings.checkpoint, "family": summary.get("family"),
                                       "vocabulary_hash": adapter_vocabulary_hash(adapter_dir), **({"variant": variant} if variant else {})}),
        }
        meta = {
            "created_at": dg.MetadataValue.text(dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
            "step_time_s": dg.MetadataValue.float(float(summary["step_time_s"])),
            "train_seconds": dg.MetadataValue.float(float(summary["train_seconds"])),
            "final_loss": dg.MetadataValue.float(float(summary["final_loss"])),
            "first_loss": dg.MetadataValue.float(float(losses[0])) if losses else dg.MetadataValue.text("n/a"),
            "steps": dg.MetadataValue.int(int(summary["steps"])),
            "global_batch_size": dg.MetadataValue.int(finetune_settings.effective_global_batch_size),
            "global_batch": dg.MetadataValue.text(
                f"{finetune_settings.per_device_batch_size} per device x {finetune_settings.nproc_per_node} processes x "
                f"{finetune_settings.grad_accum} accumulation = {finetune_settings.effective_global_batch_size}"),
            "tokens_per_s": dg.MetadataValue.float(float(summary["tokens_per_s"])),
            "span_rate_before": dg.MetadataValue.float(float(summary["span_rate_before"])),
            "span_rate_after": dg.MetadataValue.float(float(summary["span_rate_after"])),
            "adapter_dir": dg.MetadataValue.path(str(adapter_dir)),
            "base_checkpoint": dg.MetadataValue.text(finetune_settings.checkpoint),
            "family": dg.MetadataValue.text(str(summary.get("family", finetune_settings.family or "llava"))),
        }
        if metrics.get("segmentation"):
            meta.update({k: dg.MetadataValue.float(float(metrics[k])) if metrics[k] is not None else dg.MetadataValue.text("n/a")
                         for k in ("seg_loss_first", "seg_loss_last", "order_rate_before", "order_rate_after")})
            meta["order_samples"] = dg.MetadataValue.int(int(metrics["order_samples"]))
        if stages:
            meta["stage_losses"] = dg.MetadataValue.json({stage: [list(p) for p in h] for stage, h in stages.items()})
        curve = summary.get("loss_curve_png")
        if curve and Path(curve).exists():
            meta["loss_curve"] = dg.MetadataValue.md(png_markdown(Path(curve).read_bytes(), "loss curve"))
        return emit_table(context, storage, schemas.MODEL_MANIFEST_SCHEMA, [row], config=config, metadata=meta)

    @dg.asset_check(asset=lora_adapter, description="Training shows learning: the loss falls and the model emits well-formed "
                    "depth spans (<DEPTH_START>, 100 codes, <DEPTH_END>) more often than before training; with the "
                    "segmentation head (Perceptio), its loss falls (first vs last logged) and well-ordered [SEG] -> depth "
                    "span -> answer outputs on the referring probe prompts rise; a VPT run: both stages' losses fall.")
    def lora_adapter_learned(lora_adapter: TableHandle) -> dg.AssetCheckResult:
        passed, metadata = adapter_learned(json.loads(lora_adapter.read(columns=["metrics_json"])["metrics_json"][0].as_py()))
        return dg.AssetCheckResult(passed=passed, metadata=metadata)

    return [lora_adapter], [lora_adapter_learned]


def adapter_learned(m: dict) -> tuple[bool, dict]:
    """``lora_adapter_learned`` on a manifest row's metrics: (passed, metadata)."""
    if m.get("stage_losses"):  # a VPT run: each stage's loss falls (its stages start from different losses)
        falls = {stage: bool(fl and fl[1] < fl[0]) for stage, fl in m["stage_losses"].items()}
        return all(falls.values()), {
            **{f"{stage}_loss_fell": ok for stage, ok in falls.items()},
            **{f"{stage}_first_final": dg.MetadataValue.json(fl) for stage, fl in m["stage_losses"].items()}}
    loss_fell = m["first_loss"] is not None and m["final_loss"] < 0.5 * m["first_loss"]
    spans_up = m["span_samples"] == 0 or m["span_rate_after"] > m["span_rate_before"]
    metadata = {"first_loss": float(m["first_loss"] or 0), "final_loss": float(m["final_loss"]),
                "span_rate_before": float(m["span_rate_before"]), "span_rate_after": float(m["span_rate_after"])}
    if not m.get("segmentation"):
        return bool(loss_fell and spans_up), metadata
    first, last = m["seg_loss_first"], m["seg_loss_last"]
    seg_fell = first is not None and last is not None and last < first
    # no referring probe prompts although the head trained: nothing shows the order was learned
    order_up = m["order_samples"] > 0 and m["order_rate_after"] > m["order_rate_before"]
    metadata.update({"seg_loss_first": float("nan") if first is None else float(first),
                     "seg_loss_last": float("nan") if last is None else float(last),
                     "seg_loss_fell": seg_fell, "order_rate_before": float(m["order_rate_before"]),
                     "order_rate_after": float(m["order_rate_after"]), "order_samples": int(m["order_samples"]),
                     "order_rose": order_up})
    return bool(loss_fell and spans_up and seg_fell and order_up), metadata


def first_and_final(history) -> list[float] | None:
    """A stage's loss at its start and end: the means over its first and its last quarter of steps (at
    least one step each), since one step's loss is one batch's and jumps with the batch."""
    losses = [float(loss) for _, loss in history]
    if not losses:
        return None
    k = max(1, len(losses) // 4)
    return [sum(losses[:k]) / k, sum(losses[-k:]) / k]


def adapter_vocabulary_hash(adapter_dir: Path) -> str:
    """The vocabulary the adapter was trained with, as its run recorded it (a run with
    ``finetune.segmentation`` adds [SEG] in its worker, so this process's own hash would not say so)."""
    path = adapter_dir / FINETUNE_CONFIG_FILE
    try:
        return str(json.loads(path.read_text())["vocabulary_hash"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: cannot read the adapter's vocabulary hash ({exc})") from exc
