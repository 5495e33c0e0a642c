"""Records with a mask: RLE decoded by pycocotools with clear errors, and the segmentation dataset's
refusals (a mask without [SEG], a mask of another size than its image), each naming the record."""

import numpy as np
import pytest
import torch
from seg_records import square_records

from training.llava.data import ConversationDataset, RecordError
from training.llava.model import build_tiny_processor
from training.segmentation.head import SegmentationHead, segmentation_loss
from training.segmentation.masks import MaskError, decode_mask_rle, encode_mask_rle
from training.segmentation.settings import SegmentationSettings


def test_rle_round_trip_and_bad_rle_errors_name_the_record():
    mask = np.zeros((5, 7), np.uint8)
    mask[1:3, 2:6] = 1
    rle = encode_mask_rle(mask)
    assert rle["size"] == [5, 7] and isinstance(rle["counts"], str)
    assert np.array_equal(decode_mask_rle(rle), mask)
    bad = {
        "runs for another size": ({"size": [5, 8], "counts": rle["counts"]}, "do not describe a 5x8 mask"),
        "not RLE": ({"size": [5, 7], "counts": "zz!"}, "do not decode"),
        "no counts": ({"size": [5, 7]}, "exactly 'size' and 'counts'"),
        "negative size": ({"size": [-5, 7], "counts": rle["counts"]}, "positive integers"),
        "a string": ("abc", "got str"),
    }
    for name, (value, message) in bad.items():
        with pytest.raises(MaskError, match=message) as err:
            decode_mask_rle(value, "refs.parquet row 3")
        assert "refs.parquet row 3" in str(err.value), name


def test_seg_loss_is_bce_plus_dice_with_their_weights():
    logits = torch.tensor([[4.0, -4.0], [-4.0, 4.0]])
    gt = torch.tensor([[1, 0], [0, 1]])
    perfect = segmentation_loss(logits[None], [gt], SegmentationSettings())
    wrong = segmentation_loss(-logits[None], [gt], SegmentationSettings())
    assert float(perfect["bce"]) == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(-4.0))), rel=1e-5)
    assert float(perfect["total"]) < 0.1 < 4.0 < float(wrong["total"])
    s = SegmentationSettings(weight=0.5, bce_weight=2.0, dice_weight=0.5)
    parts = segmentation_loss(-logits[None], [gt], s)
    assert float(parts["total"]) == pytest.approx(0.5 * (2.0 * float(parts["bce"]) + 0.5 * float(parts["dice"])))
    with pytest.raises(ValueError, match="must be >= 0"):
        SegmentationSettings(dice_weight=-1)


@pytest.fixture(scope="module")
def head():
    return SegmentationHead.build("tiny", 64)


def test_dataset_refuses_a_mask_without_seg_and_a_mask_of_another_size(tmp_path, head):
    from training.segmentation.training import SegmentationDataset

    records = square_records(tmp_path, n=2)
    processor = build_tiny_processor()
    records[0]["conversations"][1]["value"] = "The red square."  # no [SEG] to predict the mask from
    with pytest.raises(RecordError, match=r"record 0 \(sq0\): has mask_rle but no \[SEG\]"):
        SegmentationDataset(ConversationDataset(records, tmp_path / "images", processor), head)
    records[0]["conversations"][1]["value"] = "[SEG] The red square."
    records[1]["mask_rle"] = encode_mask_rle(np.ones((50, 60), np.uint8))
    dataset = SegmentationDataset(ConversationDataset(records, tmp_path / "images", processor), head)
    item = dataset[0]
    assert tuple(item["sam_pixel_values"].shape) == (3, 64, 64) and tuple(item["gt_mask"].shape) == (112, 112)
    with pytest.raises(RecordError, match=r"record 1 \(sq1\): mask_rle is 50x60, its image sq1.png is 112x112"):
        dataset[1]
    records[1]["mask_rle"] = {"size": [112, 112], "counts": "oops"}
    with pytest.raises(RecordError, match=r"record 1 \(sq1\): mask_rle counts do not"):
        SegmentationDataset(ConversationDataset(records, tmp_path / "images", processor), head)[1]
    del records[1]["mask_rle"]
    assert SegmentationDataset(ConversationDataset(records, tmp_path / "images", processor), head)[1]["gt_mask"].numel() == 0


def test_the_adapter_row_records_the_vocabulary_the_adapter_was_trained_with(tmp_path):
    """A segmentation run adds [SEG] in its worker; the catalog row takes the hash from the adapter's record."""
    import json

    from assets.finetune import adapter_vocabulary_hash
    from perception_tokens import token_kinds, vocab

    token_kinds.enable("seg")
    try:
        with_seg = vocab.vocabulary_hash()
    finally:
        token_kinds.disable("seg")
    (tmp_path / "finetune_config.json").write_text(json.dumps({"vocabulary_hash": with_seg}))
    assert adapter_vocabulary_hash(tmp_path) == with_seg != vocab.vocabulary_hash()
    (tmp_path / "finetune_config.json").write_text("{")
    with pytest.raises(ValueError, match=r"finetune_config.json: cannot read the adapter's vocabulary hash"):
        adapter_vocabulary_hash(tmp_path)
