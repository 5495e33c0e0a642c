"""benchmarks/scale.py measures a real cell and extrapolates by the documented arithmetic (no timing
thresholds: speed is never asserted, only that the figures are there and consistent)."""

import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import scale  # noqa: E402


def test_one_in_process_cell_reports_time_cpu_and_memory():
    row = scale._run_one("marked_points", "inprocess", 12)
    assert row["stage"] == "marked_points" and row["engine"] == "inprocess" and row["images"] == 12
    assert row["ms_per_image"] > 0 and row["cpu_ms_per_image"] > 0 and row["peak_rss_mib"] > 50
    assert abs(row["ms_per_image"] - 1000 * row["seconds"] / 12) < 1  # seconds are rounded to 10 ms
    table = scale.to_markdown([row])
    assert f"| marked_points | inprocess | 12 | {row['ms_per_image']:.2f} | {row['cpu_ms_per_image']:.2f} |" in table
    older = {k: v for k, v in row.items() if k != "cpu_ms_per_image"}  # results recorded before CPU time was
    assert f"| {older['ms_per_image']:.2f} | - |" in scale.to_markdown([older])


def test_extrapolation_splits_the_three_datasets_over_gpus():
    total = 22_210 + 119_979 + 19_994
    one, eight = scale.extrapolate(1), scale.extrapolate(8)
    assert abs(one["pseudo_depth"] - total * 4.0 / 1000 / 3600) < 1e-9
    assert abs(eight["depth_tokens"] * 8 - one["depth_tokens"]) < 1e-9 and one["marked_points"] == 0


def _synthetic_gpu_check(tmp_path, **sections):
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps({"mode": "full", "sections": sections}))
    return path


def test_paper_run_uses_the_measured_throughputs(tmp_path):
    import paper_run

    images = 22_210 + 119_979 + 19_994
    path = _synthetic_gpu_check(
        tmp_path,
        depth_anything={"status": "ok", "device": "NVIDIA H100 80GB HBM3", "rows": [
            {"case": "batch 1", "encoder": "vits", "dtype": "bfloat16", "batch": 1, "images_per_s": 100.0},
            {"case": "best batch", "encoder": "vits", "dtype": "float16", "batch": 64, "images_per_s": 900.0},
            {"case": "best batch", "encoder": "vits", "dtype": "bfloat16", "batch": 32, "images_per_s": 1000.0},
            {"case": "best batch", "encoder": "vitl", "dtype": "bfloat16", "batch": 32, "images_per_s": 200.0}]},
        vqvae={"status": "ok", "rows": [{"case": "train batch 8", "images_per_s": 500.0},
                                        {"case": "extract batch 64", "images_per_s": 2000.0}]},
        lora_llava_7b={"status": "ok", "rows": [{"case": "LLaVA-1.5-7B", "tokens_per_s": 6000.0}]},
        lora_llava_13b={"status": "skipped", "reason": "the check's time budget is spent"},
        generation={"status": "ok", "rows": [{"batch": 1, "constrained_tokens_per_s": 30.0},
                                             {"batch": 8, "constrained_tokens_per_s": 200.0}]},
    )
    report = paper_run.load_report(path)
    rows = {r.stage: r for r in paper_run.estimate(report)}
    assert rows["pseudo_depth"].rate_per_gpu == 1000.0  # ViT-S, the best of the best batches
    assert rows["pseudo_depth"].hours(8) == pytest.approx(images / 1000 / 8 / 3600)
    assert rows["vqvae_train"].hours(1) == pytest.approx(20 * images / 500 / 3600)
    assert rows["depth_tokens"].hours(2) == pytest.approx(images / 2000 / 2 / 3600)
    # the 13B did not run: the 7B's tokens/s scaled by 6.61 / 12.85 (language-model parameters)
    assert rows["finetune"].rate_per_gpu == pytest.approx(6000 * 6.61 / 12.85)
    assert rows["finetune"].hours(8) == pytest.approx(250_000 * 792 / (6000 * 6.61 / 12.85) / 8 / 3600)
    assert "scaled to 13B" in rows["finetune"].source and "measured: gpu_check lora_llava_7b" in rows["finetune"].source
    assert rows["evaluation"].rate_per_gpu == pytest.approx(200 * 6.61 / 12.85)
    assert "on NVIDIA H100 80GB HBM3" in rows["pseudo_depth"].source

    text = scale.paper_run_text(path, gpus=8, usd_per_gpu_hour=2.0)
    assert "measured throughputs where present" in text and "$2.00 per GPU-hour" in text
    total_h = sum(r.hours(8) for r in rows.values())
    assert f"| **total** | | | **{total_h:.2f}** | {total_h * 8:.1f} | **{total_h * 8 * 2.0:,.0f}** |" in text


def test_paper_run_falls_back_to_flop_estimates_and_says_so(tmp_path):
    import paper_run

    text = scale.paper_run_text(tmp_path / "absent.json", gpus=8, usd_per_gpu_hour=3.0, assumed_mfu=0.5)
    assert "FLOP estimates only" in text and "absent.json absent" in text
    rows = {r.stage: r for r in paper_run.estimate(None, assumed_mfu=0.5)}
    assert rows["finetune"].rate_per_gpu == pytest.approx(989.4e12 * 0.5 / (6 * 12.85e9))
    assert rows["finetune"].source.startswith("FLOP estimate") and rows["evaluation"].source.startswith("bandwidth")
    # a smoke report (tiny models) is never taken for a measurement
    smoke = _synthetic_gpu_check(tmp_path, vqvae={"status": "ok", "rows": [{"case": "train batch 8", "images_per_s": 5.0}]})
    smoke.write_text(smoke.read_text().replace('"full"', '"smoke"'))
    assert paper_run.estimate(paper_run.load_report(smoke))[1].source.startswith("FLOP estimate")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a gpu_check report"):
        paper_run.load_report(bad)
