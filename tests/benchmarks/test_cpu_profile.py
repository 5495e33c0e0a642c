"""tests/cpu_profile.py (CPU seconds per test) and the suite's one-thread setting (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from tests.cpu_profile import summarise

REPO = Path(__file__).resolve().parents[2]


def test_summary_totals_per_file_largest_first(tmp_path):
    rows = tmp_path / "p.tsv"
    rows.write_text("tests/a.py::t1\t1.50\t2.00\ntests/b.py::t1\t4.00\t9.00\ntests/a.py::t2\t3.00\t3.50\n")
    text = summarise(str(rows))
    assert text.splitlines()[0] == "3 tests, 8 CPU s, 14 wall s"
    files = [line for line in text.splitlines() if line.startswith("| tests/") and "::" not in line]
    assert files == ["| tests/a.py | 2 | 4.5 | 5.5 |", "| tests/b.py | 1 | 4.0 | 9.0 |"]  # by CPU, not wall
    tests = [line for line in text.splitlines() if "::" in line]
    assert tests == ["| tests/b.py::t1 | 4.0 | 9.0 |", "| tests/a.py::t2 | 3.0 | 3.5 |", "| tests/a.py::t1 | 1.5 | 2.0 |"]


def test_plugin_charges_a_tests_cpu_including_its_subprocess(tmp_path):
    # the test burns 0.3 CPU s in a child process it waits for: counted by CPU time used, not by a clock
    (tmp_path / "test_burn.py").write_text(textwrap.dedent("""
        import subprocess, sys

        def test_burn():
            subprocess.run([sys.executable, "-c",
                            "import time\\nwhile time.process_time() < 0.3: pass"], check=True)
    """))
    out = tmp_path / "profile.tsv"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PTOK_CPU_PROFILE": str(out)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.cpu_profile",
                           "test_burn.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = out.read_text().splitlines()
    nodeid, cpu, wall = row.split("\t")
    assert nodeid == "test_burn.py::test_burn" and float(cpu) >= 0.3 and float(wall) >= 0.0


def test_the_suite_and_its_subprocesses_run_one_thread():
    assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    child = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, check=True, timeout=600)
    assert child.stdout.strip() == "1"
