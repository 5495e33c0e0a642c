"""The Pipes worker, launched by path as the asset launches it, outside Dagster (no Pipes channel; the graph
e2e test covers the channel): it runs the one entry point (family dispatch, probes, result file)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from assets.finetune import ENTRY, launch_command
from pipeline_lib.settings import FinetuneSettings
from training.llava.synthetic import make_synthetic_records

REPO = Path(__file__).resolve().parents[2]


def test_launch_command_uses_torchrun_only_for_several_processes():
    assert launch_command(FinetuneSettings(), ["--out", "x"]) == [sys.executable, str(ENTRY), "--out", "x"]
    several = launch_command(FinetuneSettings(nproc_per_node=3), ["--out", "x"])
    assert several[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3"] and several[5:] == [str(ENTRY), "--out", "x"]
    assert ENTRY == REPO / "training" / "pipes_worker.py" and ENTRY.is_file()


def test_worker_by_path_trains_probes_and_writes_the_result(tmp_path):
    records = make_synthetic_records(4, tmp_path / "images")
    (tmp_path / "records.json").write_text(json.dumps(records))
    (tmp_path / "config.json").write_text(json.dumps({
        "max_steps": 2, "per_device_batch_size": 2, "logging_steps": 1, "save_steps": 100, "lora": {"r": 2, "alpha": 4}}))
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_PIPES_CONTEXT", "PTOK_PARENT_PID", "RANK", "WORLD_SIZE")}
    proc = subprocess.run(
        [sys.executable, str(ENTRY), "--config", str(tmp_path / "config.json"), "--records", str(tmp_path / "records.json"),
         "--image-dir", str(tmp_path / "images"), "--out", str(tmp_path / "run"), "--span-samples", "2"],
        capture_output=True, text=True, cwd=REPO, env={**env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "finetune_result.json").read_text())
    assert summary["steps"] == 2 and summary["family"] == "llava" and summary["world_size"] == 1
    assert summary["span_samples"] == 2 and summary["span_rate_before"] == 0.0  # the untrained tiny model emits no span
    assert 0.0 <= summary["span_rate_after"] <= 1.0 and summary["train_seconds"] > 0
    assert [step for step, _ in summary["loss_history"]] == [1, 2]
    assert Path(summary["adapter_dir"]) == tmp_path / "run" / "adapter" and (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert proc.stdout.count("done: 2 steps") == 1 and "well-formed depth spans 0.00 ->" in proc.stdout
