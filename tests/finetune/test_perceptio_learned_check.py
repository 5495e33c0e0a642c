"""lora_adapter_learned under Perceptio: it also needs the segmentation loss to fall and well-ordered
[SEG] -> depth span -> answer outputs to rise on the referring probe prompts; the probes' record choice."""

from __future__ import annotations

import math

import pytest

from assets.finetune import adapter_learned
from training.finetune.probes import order_probe_records, question_of

BASE = {"first_loss": 4.0, "final_loss": 1.0, "span_samples": 0, "span_rate_before": math.nan, "span_rate_after": math.nan}
PERCEPTIO = {**BASE, "segmentation": True, "seg_loss_first": 1.8, "seg_loss_last": 1.2,
             "order_rate_before": 0.0, "order_rate_after": 0.75, "order_samples": 8}


def test_passes_when_the_seg_loss_falls_and_the_order_rises():
    passed, meta = adapter_learned(PERCEPTIO)
    assert passed and meta["seg_loss_fell"] and meta["order_rose"]
    assert (meta["seg_loss_first"], meta["seg_loss_last"], meta["order_rate_after"], meta["order_samples"]) == (1.8, 1.2, 0.75, 8)


@pytest.mark.parametrize("change, failing", [
    ({"seg_loss_last": 1.9}, "seg_loss_fell"),  # the head did not learn
    ({"seg_loss_first": None, "seg_loss_last": None}, "seg_loss_fell"),  # no seg loss logged: no row had a mask
    ({"order_rate_after": 0.0}, "order_rose"),  # the order did not rise
    ({"order_samples": 0, "order_rate_before": math.nan, "order_rate_after": math.nan}, "order_rose"),  # no probe prompts
])
def test_fails_when_either_does_not_hold(change, failing):
    passed, meta = adapter_learned({**PERCEPTIO, **change})
    assert not passed and not meta[failing]


def test_without_segmentation_the_check_is_as_before():
    assert adapter_learned(BASE) == (True, {"first_loss": 4.0, "final_loss": 1.0, "span_rate_before": pytest.approx(math.nan, nan_ok=True),
                                            "span_rate_after": pytest.approx(math.nan, nan_ok=True)})
    assert not adapter_learned({**BASE, "final_loss": 3.0})[0]  # the LM loss did not halve
    # the seg figures of a run without the head are not looked at
    assert adapter_learned({**BASE, "seg_loss_first": 1.0, "seg_loss_last": 2.0})[0]


def test_the_order_probe_takes_the_referring_records_and_their_own_questions():
    records = [{"id": "d", "conversations": [{"from": "human", "value": "<image>\nWhat is the depth map for the image?"},
                                             {"from": "gpt", "value": "<DEPTH_START>...<DEPTH_END>"}]},
               *({"id": f"r{i}", "conversations": [{"from": "human", "value": f"<image>\nSegment the object {i}."},
                                                   {"from": "gpt", "value": "[SEG] <DEPTH_START>...<DEPTH_END> It is."}]}
                 for i in range(3))]
    assert [r["id"] for r in order_probe_records(records, 2)] == ["r0", "r1"]
    assert question_of(records[2]) == "Segment the object 1."


@pytest.mark.usefixtures("single_torch_thread")
@pytest.mark.parametrize("family", ["llava", "qwen2_5_vl"])
def test_the_launch_reports_the_seg_loss_and_the_order_probe_on_both_families(family, tmp_path):
    """Perceptio on either family: the summary carries every logged seg loss and the order probe's rates,
    measured on the referring records (answers starting with [SEG])."""
    import json

    from perception_tokens import token_kinds
    from tests.segmentation.seg_records import square_records
    from training.finetune.config import FinetuneConfig
    from training.finetune.launch import main
    from training.finetune.lora import LoraSettings
    from training.segmentation.settings import SegmentationSettings

    records = square_records(tmp_path)
    (tmp_path / "records.json").write_text(json.dumps(records))
    config = FinetuneConfig(checkpoint="tiny", family=family, max_steps=2, per_device_batch_size=4, lr=1e-2, warmup_ratio=0.0,
                            logging_steps=1, save_steps=1000, lora=LoraSettings(r=8, alpha=16),
                            segmentation=SegmentationSettings(enabled=True))
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    try:
        summary = main(["--config", str(tmp_path / "config.json"), "--records", str(tmp_path / "records.json"),
                        "--image-dir", str(tmp_path / "images"), "--out", str(tmp_path / "run"), "--span-samples", "3"],
                       log=lambda _m: None)
    finally:
        token_kinds.disable("seg")  # later test modules expect the builtin vocabulary
    assert [step for step, _ in summary["seg_loss_history"]] == [1, 2] and all(v > 0 for _, v in summary["seg_loss_history"])
    assert summary["order_samples"] == 3 and summary["span_samples"] == 0  # no atomic depth prompt in these records
    assert summary["order_rate_before"] == 0.0  # the starting point never writes [SEG] first
    assert 0.0 <= summary["order_rate_after"] <= 1.0
