"""``execution.torch_threads`` reaches torch in the step's process and in the processes it starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import os, subprocess, sys
from pipeline_lib.settings import settings_from_dict
from pipeline_lib.torch_threads import apply_torch_threads
print(apply_torch_threads(settings_from_dict({"execution": {"torch_threads": 1}}).execution.torch_threads))
import torch
print(torch.get_num_threads())
child = "import torch; print(torch.get_num_threads())"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout.strip())
"""


def _probe(extra_env: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update({"PYTHONPATH": str(REPO), **extra_env})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_the_setting_reaches_torch_here_and_in_a_child():
    assert _probe({}) == ["1", "1", "1"]


def test_an_omp_num_threads_of_the_user_wins():
    assert _probe({"OMP_NUM_THREADS": "2"}) == ["2", "2", "2"]


def test_unset_changes_nothing(monkeypatch):
    from pipeline_lib.torch_threads import apply_torch_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert apply_torch_threads(None) is None and "OMP_NUM_THREADS" not in os.environ


def test_zero_threads_is_a_config_error():
    from pipeline_lib.settings import settings_from_dict

    with pytest.raises(Exception, match="torch_threads"):
        settings_from_dict({"execution": {"torch_threads": 0}})
