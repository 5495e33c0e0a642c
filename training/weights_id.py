"""Identity of a set of weights: a hash of the tensors, not of the file that holds them.

A safetensors file's bytes also carry a JSON header whose key order and free-form metadata can
differ between two saves of bit-identical tensors (a resumed run, another library version), so
hashing the file would give the same weights a new model id and re-run everything downstream.
This hashes each tensor's name, dtype, shape and raw bytes in name order instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def tensors_digest(path: str | Path) -> str:
    """sha256 (hex) over the tensors of a safetensors file, independent of header order and metadata."""
    import torch  # here, not at the top: the Dagster definitions import this module, and torch costs seconds
    from safetensors import safe_open

    h = hashlib.sha256()
    with safe_open(str(path), framework="pt") as f:
        for name in sorted(f.keys()):
            t = f.get_tensor(name).contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
