"""Fixtures shared across the test folders."""

import os

# One BLAS/OpenMP thread for the whole suite, this process and every subprocess it starts (Dagster
# Pipes workers, ``ptok`` runs, torchrun ranks inherit the environment). The suite's models are tiny:
# their matrices are too small to split, and with two threads every op waits for the other thread,
# which on a busy machine is often not scheduled. Measured on this 2-core machine under load: one
# small demo world's whole-graph run took 122 CPU s with two threads and 36 with one (generation of
# 4 answers x 110 tokens: 24.5 vs 0.8 CPU s); see benchmarks/results/test_profile.md. Set before
# torch is imported, so that its thread pools start at this size.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # in case a plugin imported torch before this file ran


@pytest.fixture(scope="module")
def single_torch_thread():
    """Tiny matrices: extra threads only add contention on shared cores (restored after the module).

    Use with ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test``: ``-n 2 --dist loadfile --no-loadscope-reorder``) the
    whole-graph files (tests/e2e, minutes each) go first, so that the many short unit files fill the
    end of the run on whichever worker is free, instead of one e2e file running alone at the end.
    A plain ``pytest`` keeps the usual order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    items.sort(key=lambda item: 0 if "/e2e/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("e2e/") else 1)


@pytest.fixture(scope="module", autouse=True)
def builtin_token_kinds_between_modules():
    """The token-kind registry a module found, restored after it: a Perceptio run enables ``[SEG]``
    process-wide (a real run has its own process; a test's in-process graph shares the worker's), and a
    later module in the same worker expects the builtin vocabulary of 466 tokens."""
    from perception_tokens import token_kinds

    before = {kind.name for kind in token_kinds.kinds()}
    yield
    for name in token_kinds.OPTIONAL:
        if name not in before:
            token_kinds.disable(name)
