"""The demo comparison's measuring pieces: CPU of the process tree, a killed run marked, the baseline export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from demo_compare import export_commit, timed_run  # noqa: E402

# the child waits for a grandchild that does a fixed amount of work; its CPU counts for the child
SPIN = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'sum(i * i for i in range(3_000_000))'], check=True)"


def test_cpu_of_waited_grandchildren_is_counted(tmp_path):
    out = timed_run([sys.executable, "-c", SPIN], {}, tmp_path, tmp_path / "log.txt", timeout=600)
    assert out["returncode"] == 0 and not out["timed_out"]
    assert out["cpu_seconds"] >= out["user_seconds"] > 0
    # the grandchild's loop alone is far above a bare interpreter start-up's CPU
    bare = timed_run([sys.executable, "-c", "pass"], {}, tmp_path, tmp_path / "log2.txt", timeout=600)
    assert out["cpu_seconds"] > bare["cpu_seconds"]


def test_a_run_past_its_timeout_is_killed_and_marked(tmp_path):
    out = timed_run([sys.executable, "-c", "import time; time.sleep(600)"], {}, tmp_path, tmp_path / "log.txt", timeout=0.5)
    assert out["timed_out"] and out["returncode"] != 0


def test_export_commit_writes_the_tree_of_head(tmp_path):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    export_commit(head, tmp_path / "tree")
    assert (tmp_path / "tree" / "pipelines" / "runner.py").read_bytes() == subprocess.run(
        ["git", "-C", str(REPO), "show", f"{head}:pipelines/runner.py"], capture_output=True, check=True).stdout
