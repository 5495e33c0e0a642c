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
