"""Stable assignment of images to shards, so a shard's content never depends on run order."""

from __future__ import annotations

import hashlib


def shard_of(image_id: str, num_shards: int) -> int:
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return int.from_bytes(hashlib.sha256(str(image_id).encode()).digest()[:8], "big") % num_shards
