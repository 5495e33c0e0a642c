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


def test_bucket_digests_move_only_in_the_bucket_that_changed():
    from perception_tokens.buckets import bucket_digest, bucket_digests

    pairs = {f"img{i}": f"sha{i}" for i in range(20)}
    before = bucket_digests(pairs.items(), 4)
    assert set(before) == {"0", "1", "2", "3"}
    assert bucket_digests(reversed(list(pairs.items())), 4) == before  # order does not matter
    assert bucket_digests([], 2) == {"0": bucket_digest([]), "1": bucket_digest([])}  # empty buckets too

    added = next(f"new{i}" for i in range(100) if hash_bucket(f"new{i}", 4) == 2)
    after = bucket_digests([*pairs.items(), (added, "sha-new")], 4)
    assert {b for b in before if before[b] != after[b]} == {"2"}
    replaced = {**pairs, "img0": "other"}
    moved = {b for b, d in bucket_digests(replaced.items(), 4).items() if d != before[b]}
    assert moved == {str(hash_bucket("img0", 4))}
