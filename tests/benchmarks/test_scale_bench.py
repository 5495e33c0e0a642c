"""benchmarks/scale.py measures a real cell and extrapolates by the documented arithmetic (no timing
thresholds: speed is never asserted, only that the figures are there and consistent)."""

import sys
from pathlib import Path

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
