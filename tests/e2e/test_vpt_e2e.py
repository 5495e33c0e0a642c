"""The whole graph under ``profile: vpt`` (configs/demo-vpt.yaml) on the demo world, materialized ONCE for
every test here: VPT's curriculum with regions on the 8 x 8 grid, both fine-tune stages' losses falling,
the re-encoder saved beside the adapter and reloading with it, and the evaluation run through it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import check_results, materialized_world
from perception_tokens import regions
from pipeline_lib.settings import settings_from_dict

pytestmark = pytest.mark.timeout(1800)
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo-vpt.yaml"


@pytest.fixture(scope="module")
def vpt_world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("vpt_world")
    raw = yaml.safe_load(CONFIG.read_text())
    raw["storage"]["root"] = str(workdir / "storage")
    raw["demo"]["root"] = str(workdir / "demo")
    settings = settings_from_dict(raw)
    with materialized_world(workdir, settings, "*") as (_defs, instance):
        yield workdir / "storage", settings, instance


def test_the_curriculum_holds_vpt_samples_with_regions_on_the_configured_grid(vpt_world):
    storage, settings, _ = vpt_world
    rows = pq.read_table(storage / "curriculum.parquet").to_pylist()
    tasks = {r["task"] for r in rows}
    assert tasks == {"vpt_region", "vpt_reencode", "vpt_plain"}, tasks
    stages = [r["vpt_stage"] for r in rows]
    assert stages == sorted(stages) and set(stages) == {1, 2}  # stage 1 first
    region_rows = [r for r in rows if r["task"] == "vpt_region"]
    assert {r["dataset"] for r in region_rows} == {"refcoco", "lvis"}  # referred and small objects
    for r in region_rows:
        cells = regions.RegionCells(*r["region_cells"], grid=r["region_grid"])
        assert r["region_grid"] == settings.curriculum.vpt["grid"] == 8
        assert r["answer"].startswith(regions.encode_region(cells))
        assert r["region_box_px"][0] < r["region_box_px"][2] and r["region_box_px"][1] < r["region_box_px"][3]
    assert all(r["answer"].startswith(regions.REENCODE_CONTROL) for r in rows if r["task"] == "vpt_reencode")
    assert all(r["region_cells"] is None and "<" not in r["answer"] for r in rows if r["task"] == "vpt_plain")
    _, _, instance = vpt_world
    assert check_results(instance)["curriculum_mix_matches_schedule"] is True  # VPT's stages, not Aurora's shares
    print(f"VPT curriculum: {len(rows)} rows, {len(region_rows)} region samples, stage 1: {stages.count(1)}")


def test_both_stages_losses_fall_and_the_reencoder_is_saved_beside_the_adapter(vpt_world):
    from training.vpt.saving import PROJECTOR_FILE, RECORD_FILE, load_reencoder

    storage, _, instance = vpt_world
    row = pq.read_table(storage / "lora_adapter.parquet").to_pylist()[0]
    assert check_results(instance)["lora_adapter_learned"] is True  # for a VPT run: both stages' losses fell
    metrics = json.loads(row["metrics_json"])
    stages = metrics["stage_losses"]
    print(f"VPT stage losses (mean of the first / last quarter of steps): {stages}")
    assert stages["align"][1] < stages["align"][0] and stages["finetune"][1] < stages["finetune"][0]
    adapter = Path(row["path"])
    record = json.loads((adapter / RECORD_FILE).read_text())
    assert record["grid"] == 8 and record["reencoder"] == "tiny" and (adapter / PROJECTOR_FILE).is_file()
    assert json.loads((adapter / "finetune_config.json").read_text())["family"] == "qwen2_vl"
    reencoder = load_reencoder(adapter)
    assert reencoder.projector.query.out_features == 64  # the tiny Qwen2-VL's width


def test_the_graph_evaluates_the_vpt_adapter(vpt_world):
    storage, _, _ = vpt_world
    preds = pq.read_table(storage / "eval_predictions.parquet").to_pylist()
    assert preds and {p["model_kind"] for p in preds} == {"adapter"}
    # the action loop ran: the "normal" arm may select regions (at most 4 actions per answer), each logged with its
    # cells on the configured grid and its crop in pixels; its "actions_off" twin asked the same questions with none
    arms = {p["ablation"] for p in preds}
    assert arms == {"normal", "actions_off"}
    by_arm = {arm: sorted((p["benchmark"], p["question_id"]) for p in preds if p["ablation"] == arm) for arm in arms}
    assert by_arm["normal"] == by_arm["actions_off"]
    assert all(p["n_actions"] == 0 and not p["actions"] for p in preds if p["ablation"] == "actions_off")
    acted = [p for p in preds if p["ablation"] == "normal" and p["n_actions"]]
    for p in acted:
        assert p["n_actions"] == len(p["actions"]) <= 4
        for a in p["actions"]:
            if a["kind"] == "region":
                assert a["grid"] == 8 and 0 <= a["x_min"] <= a["x_max"] < 8 and 0 <= a["y_min"] <= a["y_max"] < 8
                assert a["crop_left"] < a["crop_right"] and a["crop_top"] < a["crop_bottom"]
    # the zoom questions carry their box: each arm scores them, the region overlap only where a region was selected
    zoom = [s for s in pq.read_table(storage / "eval_scores.parquet").to_pylist() if s["benchmark"] == "Zoom"]
    assert {s["ablation"] for s in zoom} == {"normal", "actions_off"} and all(s["n_gt_box"] == s["n"] for s in zoom)
    for s in zoom:
        if s["n_region"]:
            assert 0 <= s["region_iou_mean"] <= s["region_iogt_mean"] <= 1
        else:
            assert s["region_iou_mean"] is None
    zoom_preds = [p for p in acted if p["benchmark"] == "Zoom"]
    assert all(p["region_iou"] is not None and p["gt_box"] for p in zoom_preds)
