"""``configs/demo-qwen.yaml``'s demo-sized Qwen2.5-VL fine-tune learns well-formed depth spans (issue 17).

Its own file (it was in test_qwen_graph_e2e.py): it shares no world with the other Qwen tests and is
the suite's longest single test, so ``pytest -n 2 --dist loadfile`` (``make test``) can run it beside
the Qwen world instead of after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import check_results, materialized_world

# 480 fine-tune steps of the toy Qwen2.5-VL on top of the demo world: minutes of CPU on a shared 2-core machine
pytestmark = pytest.mark.timeout(2700)


def test_demo_qwen_fine_tune_learns_well_formed_depth_spans(tmp_path):
    """The demo-sized run (configs/demo-qwen.yaml: its world, VQ-VAE, 640-sample curriculum and
    fine-tune budget) through the graph up to ``lora_adapter``: the loss falls below half its start
    and the well-formed depth spans of the probes go from none to most (issue 17's criterion)."""
    import yaml

    from pipeline_lib.settings import settings_from_dict

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "demo-qwen.yaml").read_text())
    raw["storage"]["root"] = str(tmp_path / "storage")
    raw["demo"]["root"] = str(tmp_path / "demo")
    settings = settings_from_dict(raw)
    with materialized_world(tmp_path, settings, "*lora_adapter") as (_defs, instance):
        metrics = json.loads(pq.read_table(tmp_path / "storage" / "lora_adapter.parquet").to_pylist()[0]["metrics_json"])
        assert check_results(instance)["lora_adapter_learned"] is True
    assert metrics["span_samples"] == 8
    assert metrics["final_loss"] < 0.5 * metrics["first_loss"]
    assert metrics["span_rate_before"] == 0.0
    assert metrics["span_rate_after"] > 0.5, metrics
