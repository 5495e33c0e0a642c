"""Shared by every VQ-VAE test module (and loaded by path in tests/hardening/test_faults.py)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny convs on shared 2-core CI: one thread avoids OpenMP oversubscription stalls, and
    keeps float sums in the same order as the one-thread fault workers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
