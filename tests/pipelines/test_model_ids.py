"""Model ids hash the tensors, not the file bytes (issue 12.6).

Two saves of bit-identical tensors whose safetensors headers differ (key order, metadata) are
different files; before the fix their model ids differed too, re-running everything downstream.
"""

import hashlib

import torch
from safetensors.torch import save_file

from training.weights_id import tensors_digest


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {"encoder.weight": torch.randn(4, 3, generator=g), "codebook": torch.randn(8, 2, generator=g).to(torch.bfloat16),
            "step": torch.tensor([7], dtype=torch.int64), "empty": torch.zeros(0)}


def test_same_tensors_in_differently_written_files_have_one_id(tmp_path):
    t = _tensors()
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file(t, a, metadata={"format": "pt", "resumed_from": "0"})
    save_file(dict(reversed(list(t.items()))), b, metadata={"resumed_from": "120", "format": "pt"})
    assert hashlib.sha256(a.read_bytes()).digest() != hashlib.sha256(b.read_bytes()).digest()  # the old id differed
    assert tensors_digest(a) == tensors_digest(b)


def test_any_change_of_a_tensor_changes_the_id(tmp_path):
    base = tmp_path / "base.safetensors"
    save_file(_tensors(), base)
    changed_value = {**_tensors(), "encoder.weight": _tensors()["encoder.weight"].clone()}
    changed_value["encoder.weight"][2, 1] += 1e-3
    renamed = {("decoder.weight" if k == "encoder.weight" else k): v for k, v in _tensors().items()}
    reshaped = {**_tensors(), "encoder.weight": _tensors()["encoder.weight"].reshape(3, 4)}
    recast = {**_tensors(), "step": torch.tensor([7], dtype=torch.int32)}
    ids = {tensors_digest(base)}
    for i, variant in enumerate([changed_value, renamed, reshaped, recast]):
        path = tmp_path / f"v{i}.safetensors"
        save_file(variant, path)
        ids.add(tensors_digest(path))
    assert len(ids) == 5
