"""``execution.torch_threads``: how many CPU threads torch's operators use, in this process and
the processes it starts (the fine-tune's Pipes subprocess, torchrun workers).

torch's default is one thread per core. For the demo's toy models every operator is tiny, and
when other programs share the cores its OpenMP threads wait for each other at every operator:
measured on the 2-core machine under load, a small ``linear`` took 10x the wall time and 10x the
CPU with 2 threads than with 1 (benchmarks/results/demo_profile.md); on a quiet machine two threads
are somewhat faster for training (benchmarks/results/demo_compare.md). The variables are read by
torch when it starts, so they are set before any step imports it; children inherit them.
An ``OMP_NUM_THREADS`` already in the environment wins (the user asked for it).
"""

from __future__ import annotations

import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def apply_torch_threads(threads: int | None) -> int | None:
    """Use ``threads`` intra-op threads from now on (None: torch's default, nothing changes).
    Returns the number in force, or None when it is torch's default."""
    if threads is None:
        return None
    chosen = os.environ.get("OMP_NUM_THREADS") or str(threads)
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, chosen)
    if "torch" in sys.modules:  # imported already (a test, a notebook): tell it directly
        sys.modules["torch"].set_num_threads(int(chosen))
    return int(chosen)
