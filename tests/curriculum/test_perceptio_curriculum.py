"""Perceptio's refer_segment task and mix: one sample per train sentence with its mask, answers in the
[SEG] -> depth span -> description order, rejects with their reason, the LLaVA record carrying the mask."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from perception_tokens.curriculum import perceptio_text
from perception_tokens.curriculum.llava_json import read_llava_json, to_llava_record, write_llava_json
from perception_tokens.curriculum.perceptio_pools import perceptio_order, refer_segment_pool
from perception_tokens.curriculum.sample import Sample
from perception_tokens.curriculum.tasks.refer import build_refer_segment
from perception_tokens.masks import mask_to_rle, rle_to_mask
from perception_tokens.vocab import encode_depth
from training.segmentation.masks import decode_mask_rle

W, H = 12, 8
CODES = [(5 * k) % 128 for k in range(100)]


def _mask(x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[2:6, x0:x1] = 1
    return m


def _ref(dataset, split, image_id, sentence_id, sentence, mask):
    return {"dataset": dataset, "split": split, "image_id": image_id, "ref_id": sentence_id * 10, "ann_id": 100 + sentence_id,
            "sentence_id": sentence_id, "sentence": sentence, "mask_rle": None if mask is None else mask_to_rle(mask)}


IMAGES = {"1": {"image_id": "1", "format": "jpeg", "width": W, "height": H},
          "2": {"image_id": "2", "format": "jpeg", "width": W, "height": H}}
DEPTH = {("refcoco", "1"): (CODES, "vq-1")}  # image 2 has no depth tokens


def test_one_sample_answers_seg_then_depth_then_description_and_carries_the_mask():
    s = build_refer_segment(dataset="refcocog", image_id="1", image_file="refcoco/1.jpg", expression="the red ball on the left.",
                            mask_rle=mask_to_rle(_mask(1, 4)), codes=CODES, depth_token_version="vq-1", image_size=(W, H),
                            annotation_id=101, ref_id=10, sentence_id=1)
    span = encode_depth(CODES)
    assert s.question == perceptio_text.refer_question("the red ball on the left")
    assert s.answer == f"[SEG] {span} It is the the red ball on the left."
    assert perceptio_text.well_ordered_answer(s.answer)
    assert (s.task, s.kind, s.dataset, s.image.dataset, s.sample_id) == (
        "refer_segment", "cot", "refcocog", "refcoco", "refer_segment:refcocog:1:1")
    assert np.array_equal(rle_to_mask(s.mask_rle), _mask(1, 4))


def test_the_pool_takes_train_sentences_of_all_three_and_rejects_with_reasons():
    rows = [
        _ref("refcoco", "train", "1", 1, "left ball", _mask(0, 3)),
        _ref("refcoco+", "train", "1", 1, "red ball", _mask(0, 3)),  # ids restart in each set
        _ref("refcocog", "train", "1", 7, "the big blue box", _mask(6, 11)),
        _ref("refcoco", "testA", "1", 2, "right box", _mask(6, 11)),  # the benchmark's: held out, not a reject
        _ref("refcoco", "train", "2", 3, "cup", _mask(0, 3)),  # no depth tokens for image 2
        _ref("refcoco+", "train", "1", 4, "plate", None),  # no mask
        {**_ref("refcocog", "train", "1", 5, "chair", None), "mask_rle": mask_to_rle(np.ones((4, 4), np.uint8))},
        _ref("refcoco", "train", "9", 6, "dog", _mask(0, 3)),  # image not read
        _ref("refcoco", "train", "1", 8, " . ", _mask(0, 3)),  # empty expression
    ]
    pool = refer_segment_pool(rows, DEPTH, IMAGES)
    assert sorted(s.sample_id for s in pool.samples) == [
        "refer_segment:refcoco+:1:1", "refer_segment:refcoco:1:1", "refer_segment:refcocog:1:7"]
    assert all(s.mask_rle is not None and perceptio_text.well_ordered_answer(s.answer) for s in pool.samples)
    assert pool.held_out == Counter({("refcoco", "testA"): 1})
    reasons = {r.record_id: r.reason for r in pool.rejects}
    assert reasons == {
        "refcoco ref 30 sentence 3": "no depth tokens for image 2 (no pseudo_depth / depth_tokens row)",
        "refcoco+ ref 40 sentence 4": "no mask for the referred object (mask_rle is null)",
        "refcocog ref 50 sentence 5": f"mask is 4x4 but the image is {H}x{W}",
        "refcoco ref 60 sentence 6": "image 9 is not in refcoco_images (missing or rejected)",
        "refcoco ref 80 sentence 8": "empty referring expression ' . '",
    }
    assert {r.stage for r in pool.rejects} == {"curriculum"}


def test_the_llava_record_carries_the_mask_the_segmentation_head_decodes(tmp_path):
    (sample,) = refer_segment_pool([_ref("refcocog", "train", "1", 7, "box", _mask(6, 11))], DEPTH, IMAGES).samples
    path = tmp_path / "curriculum.json"
    write_llava_json([to_llava_record(sample)], path)
    (record,) = read_llava_json(path)
    assert record["conversations"][1]["value"].startswith("[SEG] <DEPTH_START>")
    assert np.array_equal(decode_mask_rle(record["mask_rle"], "test"), _mask(6, 11))
    assert Sample.from_row(sample.to_row()) == sample
    # a sample without a mask writes the record exactly as before (no mask_rle key)
    plain = Sample.from_row({**sample.to_row(), "mask_rle": None})
    assert "mask_rle" not in to_llava_record(plain)


def test_the_order_is_every_sample_once_per_epoch_in_a_seeded_shuffle():
    pool = refer_segment_pool([_ref("refcoco", "train", "1", i, f"object {i}", _mask(0, 3)) for i in range(1, 9)], DEPTH, IMAGES)
    order = perceptio_order(pool.samples, epochs=2, seed=0)
    ids = [s.sample_id for _, s in order]
    assert [e for e, _ in order] == [0] * 8 + [1] * 8
    assert sorted(ids[:8]) == sorted(ids[8:]) == sorted(s.sample_id for s in pool.samples)
    assert ids[:8] != sorted(ids[:8]) or ids[8:] != sorted(ids[8:])  # shuffled, not the input order
    assert perceptio_order(list(reversed(pool.samples)), epochs=2, seed=0) == order  # input order does not matter
    assert len(perceptio_order(pool.samples, epochs=2, seed=0, limit=5)) == 5


@pytest.mark.parametrize("text", [
    "It is the ball.",  # no perception prefix
    f"{encode_depth(CODES)} [SEG] It is the ball.",  # depth before [SEG]
    f"[SEG] {encode_depth(CODES)}",  # no answer
    f"[SEG] {encode_depth(CODES).replace('<DEPTH_0>', '', 1)} It is the ball.",  # 99 codes
    f"[SEG] {encode_depth(CODES)} It is the ball. [SEG]",  # a second [SEG]
])
def test_disordered_answers_are_not_well_ordered(text):
    assert not perceptio_text.well_ordered_answer(text)
