"""Batch padding shared by the families' collators."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch


def pad_right(features: Sequence[Mapping[str, torch.Tensor]], pad_values: Mapping[str, int],
              length: int | None = None) -> dict[str, torch.Tensor]:
    """For each key of ``pad_values``, the features' 1-D tensors as one ``[batch, length]`` long tensor,
    right-padded with that key's pad value; ``length`` defaults to the longest first key."""
    first = next(iter(pad_values))
    longest = length or max(len(f[first]) for f in features)
    batch = {key: torch.full((len(features), longest), pad, dtype=torch.long) for key, pad in pad_values.items()}
    for i, feature in enumerate(features):
        for key in pad_values:
            batch[key][i, : len(feature[key])] = feature[key]
    return batch
