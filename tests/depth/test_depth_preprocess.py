"""Depth Anything pre/post-processing: fixed square input, min-max to uint8, PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perception_tokens.depth.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_input_size,
    decode_png,
    encode_png,
    normalize_depth,
    preprocess_batch,
    resize_predictions,
)


def test_preprocess_is_fixed_square_normalised_channels_last():
    gray = np.full((30, 50, 3), 128, dtype=np.uint8)
    other = np.zeros((17, 9, 3), dtype=np.uint8)
    batch = preprocess_batch([gray, other], input_size=28)
    assert batch.shape == (2, 3, 28, 28) and batch.dtype == torch.float32
    assert batch.is_contiguous(memory_format=torch.channels_last)
    expected = (128 / 255 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(batch[0, :, 5, 7].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(batch[1, :, 0, 0].numpy(), -IMAGENET_MEAN / IMAGENET_STD, rtol=1e-5)


def test_preprocess_rejects_non_rgb_uint8():
    with pytest.raises(ValueError, match="uint8"):
        preprocess_batch([np.zeros((4, 4, 3), dtype=np.float32)], 14)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        preprocess_batch([np.zeros((4, 4), dtype=np.uint8)], 14)


@pytest.mark.parametrize("bad", [0, 50, 518.0, -14, True])
def test_input_size_must_be_multiple_of_14(bad):
    with pytest.raises(ValueError, match="multiple of 14"):
        check_input_size(bad)


def test_resize_predictions_back_to_original_sizes():
    pred = torch.arange(2 * 14 * 14, dtype=torch.float32).reshape(2, 14, 14)
    out = resize_predictions(pred, [(5, 7), (20, 3)])
    assert [o.shape for o in out] == [(5, 7), (20, 3)]
    assert all(o.dtype == np.float32 for o in out)
    # corners are aligned, so the corner values survive exactly
    assert out[0][0, 0] == 0.0 and out[0][-1, -1] == pred[0, -1, -1].item()


def test_normalize_depth_spans_0_to_255_and_truncates_like_reference():
    raw = np.array([[1.0, 2.0], [3.0, 1.5]], dtype=np.float32)
    depth, low, high = normalize_depth(raw)
    assert depth.dtype == np.uint8
    assert (low, high) == (1.0, 3.0)
    assert depth.tolist() == [[0, 127], [255, 63]]  # 127.5 -> 127, 63.75 -> 63


def test_normalize_depth_constant_and_non_finite():
    depth, low, high = normalize_depth(np.full((3, 4), 7.0, dtype=np.float32))
    assert depth.tolist() == [[0] * 4] * 3 and low == high == 7.0
    with pytest.raises(ValueError, match="non-finite"):
        normalize_depth(np.array([[1.0, np.nan]], dtype=np.float32))


def test_png_round_trip_is_lossless_and_deterministic():
    depth = (np.arange(12 * 20) % 256).astype(np.uint8).reshape(12, 20)
    data = encode_png(depth)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert encode_png(depth) == data
    np.testing.assert_array_equal(decode_png(data), depth)
