"""uint8 depth maps <-> tensors, batching and the bounded shuffle."""

import numpy as np
import pytest
import torch

from training.vqvae.data import batched, buffered_shuffle, depth_to_tensor, tensor_to_depth_uint8


def test_depth_to_tensor_resizes_any_size_to_unit_range():
    maps = [np.full((48, 72), 255, np.uint8), np.zeros((100, 30, 1), np.uint8), np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)]
    x = depth_to_tensor(maps, 40)
    assert x.shape == (3, 1, 40, 40) and x.dtype == torch.float32
    assert torch.all(x[0] == 1.0) and torch.all(x[1] == 0.0)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_depth_to_tensor_rejects_bad_maps_by_index():
    ok = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="depth map #1: expected dtype uint8"):
        depth_to_tensor([ok, np.zeros((8, 8), np.float32)], 8)
    with pytest.raises(ValueError, match="depth map #0: expected a 2-D"):
        depth_to_tensor([np.zeros((8, 8, 3), np.uint8)], 8)
    with pytest.raises(ValueError, match="no depth maps"):
        depth_to_tensor([], 8)


def test_tensor_to_depth_round_trip_and_clamp():
    rng = np.random.default_rng(0)
    maps = [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(2)]
    back = tensor_to_depth_uint8(depth_to_tensor(maps, 16))
    assert all(np.array_equal(a, b) for a, b in zip(maps, back))
    out = tensor_to_depth_uint8(torch.tensor([[[[-0.5, 1.7]]]]), sizes=[(3, 5)])
    assert out[0].shape == (3, 5) and out[0].dtype == np.uint8
    assert out[0][:, 0].max() == 0 and out[0][:, -1].min() == 255


def test_batched_and_shuffle_are_deterministic_permutations():
    assert [len(b) for b in batched(range(10), 4)] == [4, 4, 2]
    for buffer in (3, 100):
        a = list(buffered_shuffle(range(20), buffer, np.random.default_rng(5)))
        b = list(buffered_shuffle(range(20), buffer, np.random.default_rng(5)))
        c = list(buffered_shuffle(range(20), buffer, np.random.default_rng(6)))
        assert sorted(a) == list(range(20)) and a == b and a != c and a != list(range(20))
