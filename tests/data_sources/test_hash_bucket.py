"""hash_bucket is a pure function of the key: recorded buckets must never move (the depth
shards, the VQ-VAE fraction and the marked-image draw all depend on them)."""

import pytest

from perception_tokens.buckets import hash_bucket


def test_recorded_buckets_do_not_move():
    assert [hash_bucket(k, 10) for k in ["a", "b", "img_0001", "marked:x"]] == [0, 6, 0, 8]
    assert hash_bucket("a", 2**31 - 1) == 1598734322


def test_buckets_stay_in_range_and_cover_it():
    buckets = [hash_bucket(f"image-{i}", 7) for i in range(500)]
    assert set(buckets) == set(range(7))


def test_zero_buckets_is_refused():
    with pytest.raises(ValueError, match="num_buckets must be >= 1, got 0"):
        hash_bucket("a", 0)
