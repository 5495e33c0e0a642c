"""lora_adapter's data version depends on the adapter only: two runs that report the same weights
and losses at other speeds and times give the same version (issue 21). Before the fix the row
carried ``created_at`` and the run's tokens/s and seconds, so every run was a new version."""

from __future__ import annotations

import json

import dagster as dg
import torch
from safetensors.torch import save_file
from upath import UPath

from assets.finetune import build_finetune_assets
from perception_tokens.vocab import vocabulary_hash
from training.finetune.adapter_folder import FINETUNE_CONFIG_FILE
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.resources import StorageResource
from pipeline_lib.settings import settings_from_dict
from pipeline_lib.tables import write_table_atomic
from test_lora_adapter_handoff import _curriculum_rows as curriculum_rows, _export as export


class ReportingPipesClient(dg.PipesSubprocessClient):
    """Stands in for the fine-tune process: reports the summary it was given (the trainer is not under test)."""

    summary: dict = {}

    def run(self, *, context, command, **kwargs):
        summary = ReportingPipesClient.summary

        class Reported:
            def get_custom_messages(self):
                return [summary]

        return Reported()


def _materialize(instance, storage_root, lora_adapter):
    result = dg.materialize(
        [lora_adapter, dg.AssetSpec("curriculum")], selection=[lora_adapter.key], instance=instance,
        resources={"io_manager": ParquetIOManagerFactory(root=str(storage_root)), "storage": StorageResource(root=str(storage_root)),
                   "pipes_subprocess_client": ReportingPipesClient()})
    assert result.success
    event = instance.get_latest_materialization_event(lora_adapter.key)
    return event.tags["dagster/data_version"], event.asset_materialization.metadata


def test_same_adapter_at_another_speed_keeps_the_data_version(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage_root = tmp_path / "storage"
    write_table_atomic(UPath(storage_root / "curriculum.parquet"),
                       curriculum_rows(export(storage_root, "curriculum/files/e", "s0"), 2))
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    save_file({"lora_A": torch.arange(6.0).reshape(2, 3)}, str(adapter_dir / "adapter_model.safetensors"))
    # the run's record of its vocabulary, which the catalog row takes (as the fine-tune worker writes it)
    (adapter_dir / FINETUNE_CONFIG_FILE).write_text(json.dumps({"vocabulary_hash": vocabulary_hash()}))
    (lora_adapter,), _ = build_finetune_assets(settings_from_dict({"storage": {"root": str(storage_root)}}))
    instance = dg.DagsterInstance.ephemeral()
    base = {"adapter_dir": str(adapter_dir), "final_loss": 0.5, "steps": 6, "span_rate_before": 0.0, "span_rate_after": 0.5,
            "world_size": 1, "span_samples": 8, "loss_history": [[1, 2.0], [6, 0.5]], "family": "llava"}

    ReportingPipesClient.summary = {**base, "tokens_per_s": 1000.0, "step_time_s": 0.2, "train_seconds": 1.2}
    first, first_meta = _materialize(instance, storage_root, lora_adapter)
    ReportingPipesClient.summary = {**base, "tokens_per_s": 400.0, "step_time_s": 0.5, "train_seconds": 3.0}
    second, second_meta = _materialize(instance, storage_root, lora_adapter)

    assert first == second
    assert (first_meta["tokens_per_s"].value, second_meta["tokens_per_s"].value) == (1000.0, 400.0)  # kept, as metadata
    assert second_meta["train_seconds"].value == 3.0 and "created_at" in second_meta

    ReportingPipesClient.summary = {**base, "final_loss": 0.4, "tokens_per_s": 400.0, "step_time_s": 0.5, "train_seconds": 3.0}
    third, _ = _materialize(instance, storage_root, lora_adapter)
    assert third != second  # what the adapter is (its losses) still moves the version
