"""The whole graph with ``finetune.family: qwen2_5_vl`` on a small demo world, then ``ptok eval`` with
constrained decoding on every benchmark folder, through the Qwen2.5-VL adapter the graph trained."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import check_results, materialized_world, small_settings
from pipeline_lib import catalog
from evaluation.benchmarks.registry import specs as benchmark_specs

# the whole graph, then five `ptok eval` calls: minutes of CPU on a shared 2-core machine
pytestmark = pytest.mark.timeout(2700)

@pytest.fixture(scope="module")
def qwen_world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("qwen_world")
    settings = small_settings(
        workdir,
        vqvae={"epochs": 2, "min_closest_point_agreement": 0.0, "min_codebook_usage": 0.0},
        curriculum={"epochs": 3, "percents": [1.0, 0.5, 0.0], "epoch_size": 12, "marked_fraction": 1.0},
        finetune={"family": "qwen2_5_vl", "max_steps": 6, "per_device_batch_size": 2, "lr": 0.01, "lora_r": 8,
                  "lora_alpha": 16, "save_steps": 3, "logging_steps": 1, "span_samples": 2},
        # one constrained chain-of-thought run (room for a 102-token depth span) keeps generation short
        evaluation={"demo_scenes": 2, "max_per_subset": 1, "max_new_tokens": 110, "batch_size": 4,
                    "runs": [["cot", "normal"]]},
    )
    with materialized_world(workdir, settings, "*") as (defs, instance):
        yield workdir, settings, instance


def test_graph_trains_and_evaluates_a_qwen_adapter(qwen_world):
    workdir, settings, instance = qwen_world
    storage = workdir / "storage"
    row = pq.read_table(storage / "lora_adapter.parquet").to_pylist()[0]
    adapter = Path(row["path"])
    meta = json.loads((adapter / "finetune_config.json").read_text())
    assert meta["family"] == "qwen2_5_vl" and json.loads(row["inputs_json"])["family"] == "qwen2_5_vl"
    metrics = json.loads(row["metrics_json"])
    assert metrics["steps"] == 6 and metrics["final_loss"] < metrics["first_loss"]
    assert "lora_adapter_learned" in check_results(instance)

    preds = pq.read_table(storage / "eval_predictions.parquet").to_pylist()
    assert {p["benchmark"] for p in preds} >= {"HardBLINK", "BLINK", "CV-Bench"}
    assert {(p["mode"], p["ablation"]) for p in preds} == {("cot", "normal")}
    assert all(p["constrained"] for p in preds)
    # constrained decoding: every depth span a Qwen answer contains is well formed
    assert all(all(p["depth_spans_valid"]) for p in preds)
    assert not [p for p in preds if p["error"] and "oracle" not in p["error"] and "applies to" not in p["error"]]


def test_ptok_eval_on_every_benchmark_with_the_qwen_adapter(qwen_world, tmp_path, monkeypatch):
    import yaml

    from pipelines import cli

    workdir, settings, instance = qwen_world
    config = tmp_path / "world.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    monkeypatch.setenv("PTOK_CONFIG", str(config))
    monkeypatch.setenv("PTOK_WORKDIR", str(workdir))
    monkeypatch.setenv("DAGSTER_HOME", str(workdir / "dagster_home"))
    roots = settings.demo_root / "benchmarks"
    for spec in benchmark_specs():
        if spec.answer_type == "mask":  # refcoco_res: masks come from a Perceptio adapter's segmentation head; this adapter has none, so ptok eval refuses it
            assert cli.main(["eval", "--benchmark", spec.name, "--root", str(roots / spec.demo_dir)]) == 2, spec.name
            continue
        # the counting sets' images are released apart from their jsonl files (--images)
        images = ["--images", str(roots / spec.demo_images_dir)] if spec.demo_images_dir else []
        assert cli.main(["eval", "--benchmark", spec.name, "--root", str(roots / spec.demo_dir), *images]) == 0, spec.name
    _, rows = catalog.query(settings.catalog_path, "select distinct benchmark, constrained from eval_predictions "
                                                   "where model_kind = 'adapter' and ablation = 'normal'")
    assert {r[1] for r in rows} == {True}
    assert len({r[0] for r in rows}) == len({p["benchmark"] for p in pq.read_table(workdir / "storage" / "eval_predictions.parquet").to_pylist()})
