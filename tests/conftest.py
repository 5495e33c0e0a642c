"""Fixtures shared across the test folders."""

import pytest
import torch


@pytest.fixture(scope="module")
def single_torch_thread():
    """Tiny matrices: extra threads only add contention on shared cores (restored after the module).

    Use with ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
