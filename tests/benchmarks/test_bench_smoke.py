"""The benchmark harness runs and reports ratios (no timing thresholds: speed is never asserted)."""

import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import bench_pipeline  # noqa: E402
import run_all  # noqa: E402

from pipeline_lib.settings import settings_from_dict  # noqa: E402


def test_cheapest_benchmark_reports_positive_ratios(tmp_path):
    result = run_all.bench_depth_tokens(sizes=(("tiny", 4, 2),))
    (row,) = result["rows"]
    for key in ("ours", "reference", "ratio"):
        assert row[key] > 0, (key, row)
    assert row["ratio"] == pytest.approx(row["ours"] / row["reference"])
    assert row["unit"] == "images/s" and row["better"] == "higher"
    assert result["details"][0]["n_images"] == 4
    # batched and one-by-one paths encode the same maps to (nearly) the same codes
    assert result["details"][0]["code_agreement"] > 0.9

    entry = {**result, "error": None, "params": {}, "started": "t", "seconds": 1.0, "load_avg_start": [0, 0, 0],
             "torch_threads": 1}
    results = {"mode": "quick", "machine": run_all.machine_info(), "finished": "now", "benchmarks": {"depth_tokens": entry}}
    json_path, md_path = run_all.write_results(results, tmp_path)
    assert json.loads(json_path.read_text())["benchmarks"]["depth_tokens"]["rows"][0]["ratio"] == pytest.approx(row["ratio"])
    md = md_path.read_text()
    assert "| depth_tokens | tiny VQ-VAE (80 px), " in md and f"**{row['ratio']:.2f}**" in md
    assert "cpu_count" in md
    # --only merges into earlier results of the same mode, never across modes
    assert run_all.load_previous(tmp_path, "quick")["benchmarks"].keys() == {"depth_tokens"}
    assert run_all.load_previous(tmp_path, "full")["benchmarks"] == {}


def test_result_row_rejects_non_positive_measurements():
    with pytest.raises(ValueError, match="positive"):
        run_all.result_row("x", 0.0, 1.0, "s", "lower", "", "a", "b")


def test_demo_output_parsing():
    text = (
        "  + ade20k_images                                     2.6 s\n"
        "  = lvis_images                                   fresh, skipped\n"
        "  ! depth_vqvae                                   FAILED: boom\n"
        "  - depth_tokens                                  skipped: an upstream asset failed\n"
        "demo finished in 12.5 s: 1 step(s) materialized,\n 1 fresh and skipped, 2 failed\n"
    )
    parsed = bench_pipeline.parse_demo_output(text)
    assert parsed["summary"] == {"seconds": 12.5, "materialized": 1, "fresh_skipped": 1, "failed": 2}
    assert parsed["materialized_steps"] == ["ade20k_images"]
    assert (parsed["n_fresh"], parsed["n_failed"]) == (1, 2)


def test_bench_configs_are_valid_settings(tmp_path):
    raw = bench_pipeline.scaled_demo_config(2000)
    demo = raw["demo"]
    assert demo["n_ade20k"] + demo["n_lvis"] + demo["n_refcoco"] == 2000
    assert settings_from_dict(raw).vqvae.epochs == 1
    import yaml

    quick = yaml.safe_load(run_all.quick_demo_config(tmp_path).read_text())
    assert settings_from_dict(quick).finetune.max_steps == 4
