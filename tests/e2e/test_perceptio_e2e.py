"""``configs/demo-perceptio.yaml`` (profile: perceptio) on the demo world, the whole graph materialized ONCE for
every test here: the refer_segment curriculum with masks in the [SEG] -> depth -> answer order over all three
referring sets, the segmentation loss falling and the well-ordered outputs rising in the fine-tune, and the
adapter folder holding the SAM2 head. (The evaluation half, refcoco_res from the head's masks, is another change.)"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from assets.curriculum_export import LlavaExport
from conftest import check_results, materialized_world
from perception_tokens.curriculum.perceptio_text import well_ordered_answer
from perception_tokens.masks import rle_to_mask
from pipeline_lib.settings import settings_from_dict
from pipeline_lib.settings_loading import read_config_file
from pipeline_lib.tables import TableHandle

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo-perceptio.yaml"


@pytest.fixture(scope="module")
def perceptio_world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("perceptio")
    raw = read_config_file(CONFIG)
    raw["storage"]["root"] = str(workdir / "storage")
    raw["demo"]["root"] = str(workdir / "demo")
    settings = settings_from_dict(raw, source=str(CONFIG))
    with materialized_world(workdir, settings, "*") as (defs, instance):
        yield workdir / "storage", settings, instance


def _rows(storage: Path, name: str) -> list[dict]:
    return pq.read_table(storage / f"{name}.parquet").to_pylist()


def test_the_config_is_the_perceptio_profile_at_toy_scale(perceptio_world):
    _, settings, _ = perceptio_world
    assert settings.profile == "perceptio"
    assert settings.datasets.refer_datasets == ["refcoco", "refcoco+", "refcocog"]
    assert (settings.curriculum.style, settings.vqvae.data) == ("perceptio", "refer_train")
    assert settings.finetune.segmentation == {"enabled": True, "sam2_checkpoint": "tiny"}
    assert settings.finetune.depth_losses == {"marker": 1.0, "token": 1.0, "count": 1.0, "reconstruction": 1.0}


def test_curriculum_is_every_train_sentence_with_its_mask_in_perceptio_order(perceptio_world):
    storage, _, instance = perceptio_world
    cur = _rows(storage, "curriculum")
    train = [r for r in _rows(storage, "refcoco_refs") if r["split"] == "train"]
    rejects = _rows(storage, "curriculum_rejects")
    assert len(cur) + len(rejects) == len(train) and not rejects  # every train sentence of the demo is usable
    assert {r["task"] for r in cur} == {"refer_segment"}
    assert Counter(r["dataset"] for r in cur) == Counter(r["dataset"] for r in train)  # all three sets
    refs = {(r["dataset"], r["sentence_id"]): r for r in train}
    for r in cur:
        assert well_ordered_answer(r["answer"]), r["answer"][:80]
        ref = refs[(r["dataset"], int(r["sample_id"].rsplit(":", 1)[1]))]
        assert r["mask_rle"] == ref["mask_rle"] and rle_to_mask(r["mask_rle"]).sum() > 0
        assert r["question"].endswith("describe the object in one sentence.") and ref["sentence"].strip() in r["question"]
    records = json.loads(LlavaExport.from_table(TableHandle([storage / "curriculum.parquet"])).verified_json(str(storage)).read_text())
    assert len(records) == len(cur) and all(rec["mask_rle"] == r["mask_rle"] for rec, r in zip(records, cur))
    checks = check_results(instance)
    assert checks["curriculum_perceptio_samples"] and checks["curriculum_tokens_parse"] and checks["curriculum_images_resolve"]
    # every image a train sentence refers to has depth tokens (refcoco_images covers the three sets)
    tokens = pq.read_table([str(p) for p in sorted((storage / "depth_tokens").rglob("[!.]*.parquet"))]).to_pylist()
    assert {r["image_id"] for r in train} <= {r["image_id"] for r in tokens if r["dataset"] == "refcoco"}


def test_the_fine_tune_learns_the_mask_and_the_order(perceptio_world):
    _, _, instance = perceptio_world
    meta = instance.get_latest_materialization_event(dg.AssetKey("lora_adapter")).asset_materialization.metadata
    first, last = meta["seg_loss_first"].value, meta["seg_loss_last"].value
    before, after = meta["order_rate_before"].value, meta["order_rate_after"].value
    assert last < first, (first, last)
    assert meta["order_samples"].value == 8 and after > before, (before, after)
    assert check_results(instance)["lora_adapter_learned"]
    adapter = Path(meta["adapter_dir"].value)
    assert (adapter / "segmentation_head.safetensors").stat().st_size > 0
    assert json.loads((adapter / "segmentation_head.json").read_text())


def test_the_graph_evaluates_refcoco_res_from_the_heads_masks_and_asks_perceptios_way(perceptio_world):
    from evaluation.segmentation_metrics import gold_mask
    from perception_tokens.curriculum.perceptio_text import PERCEPTION_INSTRUCTION

    storage, _, _ = perceptio_world
    preds = _rows(storage, "eval_predictions")
    res = [p for p in preds if p["benchmark"] == "RefCOCO-RES"]
    # every referring question of the eight splits is answered with a mask at its ground truth's size
    assert {p["subset"] for p in res} == {f"{d}_{s}" for d in ("refcoco", "refcoco+") for s in ("val", "testA", "testB")} | {
        "refcocog_val", "refcocog_test"}
    for p in res:
        gold = gold_mask(p)
        assert p["pred_mask"] is not None and rle_to_mask(p["pred_mask"]).shape == tuple(gold["size"])
        assert ("[SEG]" in (p["raw_output"] or "")) == (p["pred"] == "[SEG]")  # no [SEG]: an empty mask, counted unparsed
    scores = [s for s in _rows(storage, "eval_scores") if s["benchmark"] == "RefCOCO-RES"]
    assert len(scores) == 8 and all(s["ciou_pct"] is not None and 0 <= s["ciou_pct"] <= 100 and s["n"] == 8 for s in scores)
    hard = [p for p in preds if p["benchmark"] == "HardBLINK" and p["ablation"] == "normal"]
    assert hard and all(PERCEPTION_INSTRUCTION in p["prompt_text"] for p in hard)
