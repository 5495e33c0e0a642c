"""Stable hash buckets: a key's bucket depends only on the key, never on run order.

Used to shard images, to draw a fixed fraction of them, and as a seeded sort key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def hash_bucket(key: str, num_buckets: int) -> int:
    """The bucket in ``[0, num_buckets)`` of ``key``: the first 8 bytes of its sha256, modulo."""
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    return int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "big") % num_buckets


def bucket_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """A digest of ``(key, content hash)`` pairs, independent of their order: it moves exactly
    when a key is added, removed, or its content hash changes."""
    h = hashlib.sha256()
    for key, content in sorted((str(k), str(c)) for k, c in pairs):
        h.update(f"{key}\0{content}\n".encode())
    return h.hexdigest()[:24]


def bucket_digests(pairs: Iterable[tuple[str, str]], num_buckets: int) -> dict[str, str]:
    """``bucket_digest`` of each bucket's pairs, for every bucket in ``[0, num_buckets)`` (an
    empty bucket has the digest of no pairs), keyed by the bucket number as a string."""
    by_bucket: dict[int, list[tuple[str, str]]] = {b: [] for b in range(num_buckets)}
    for key, content in pairs:
        by_bucket[hash_bucket(key, num_buckets)].append((key, content))
    return {str(b): bucket_digest(p) for b, p in by_bucket.items()}
