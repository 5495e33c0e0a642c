"""Shared by every VQ-VAE test module (and loaded by path in tests/hardening/test_faults.py)."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(single_torch_thread):
    """Tiny convs on shared 2-core CI: one thread (tests/conftest.py) avoids OpenMP
    oversubscription stalls, and keeps float sums in the same order as the one-thread fault workers."""
    yield
