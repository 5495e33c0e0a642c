"""Right-padding shared by the families' collators."""

import torch

from training.finetune.collate import pad_right


def test_pad_right_pads_each_key_with_its_value_to_the_longest_or_given_length():
    features = [{"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor([-100, 6, 7])},
                {"input_ids": torch.tensor([8]), "labels": torch.tensor([8])}]
    batch = pad_right(features, {"input_ids": 0, "labels": -100})
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["input_ids"].dtype == torch.long
    assert pad_right(features, {"input_ids": 1}, length=4)["input_ids"].tolist() == [[5, 6, 7, 1], [8, 1, 1, 1]]
