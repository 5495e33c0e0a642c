"""lora_adapter through Dagster Pipes on the tiny LLaVA: manifest, adapter files, streamed logs."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from conftest import check_results, small_settings
from perception_tokens.vocab import vocabulary_hash
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph


def test_lora_adapter_through_pipes(workdir):
    settings = small_settings(
        workdir,
        vqvae={"epochs": 1, "min_closest_point_agreement": 0.0, "min_codebook_usage": 0.0},
        curriculum={"epochs": 2, "percents": [1.0, 0.5], "epoch_size": 12},
        finetune={"max_steps": 6, "per_device_batch_size": 2, "lr": 0.01, "lora_r": 8, "lora_alpha": 16,
                  "save_steps": 3, "logging_steps": 1, "span_samples": 2},
    )
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    report = materialize_graph(defs, instance, "*", log=lambda m: None)
    assert not report.failed, report.failed

    row = pq.read_table(workdir / "storage" / "lora_adapter.parquet").to_pylist()[0]
    adapter = Path(row["path"])
    assert (adapter / row["weights_file"]).is_file()
    assert (adapter / "token_map.json").is_file() and (adapter / "adapter_config.json").is_file()
    metrics = json.loads(row["metrics_json"])
    assert metrics["steps"] == 6
    assert metrics["final_loss"] < metrics["first_loss"]
    assert json.loads(row["inputs_json"])["vocabulary_hash"] == vocabulary_hash()
    assert (adapter.parent / "checkpoints").is_dir()  # save_steps=3: checkpoints to resume from

    # the trainer's per-step losses came back through Pipes into the run's logs
    event = instance.get_latest_materialization_event(dg.AssetKey("lora_adapter"))
    messages = [e.user_message for e in instance.all_logs(event.run_id)]
    assert any("step" in m and "loss" in m for m in messages), messages[-20:]
    assert "loss_curve" in event.asset_materialization.metadata
    assert "lora_adapter_learned" in check_results(instance)
