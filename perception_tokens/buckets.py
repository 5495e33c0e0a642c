"""Stable hash buckets: a key's bucket depends only on the key, never on run order.

Used to shard images, to draw a fixed fraction of them, and as a seeded sort key."""

from __future__ import annotations

import hashlib


def hash_bucket(key: str, num_buckets: int) -> int:
    """The bucket in ``[0, num_buckets)`` of ``key``: the first 8 bytes of its sha256, modulo."""
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    return int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "big") % num_buckets
