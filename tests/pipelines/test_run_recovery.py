"""A killed run must not block later runs: its pool slot is freed, and waiting stays interruptible.

Reproduces issue 12.1: a run whose ptok process was SIGKILLed keeps its ``accelerator`` slot,
and the next run waited forever, deaf to SIGTERM/SIGINT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.instance import DAGSTER_YAML
from pipelines.run_recovery import HOST_TAG, PID_TAG, PROCESS_START_TAG, owner_is_dead, process_tags, reap_dead_runs

WORKER = Path(__file__).with_name("pool_worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    return home


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _run_holding_slot(instance: dg.DagsterInstance, tags: dict[str, str]) -> str:
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=f"{os.getpid():x}deadbeef-0000-0000-0000-000000000000"[:36],
                     status=dg.DagsterRunStatus.STARTED, tags=tags)
    instance.add_run(run)
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("accelerator")
    claim = storage.claim_concurrency_slot("accelerator", run.run_id, "lora_adapter", 0)
    assert claim.is_claimed
    return run.run_id


def _default_signals() -> None:
    # An ignored signal is inherited through exec, and Python installs no KeyboardInterrupt
    # handler when SIGINT starts ignored: a suite launched by `cmd &` from a script (SIGINT
    # ignored) or by a supervisor that ignores SIGTERM would pass that on to the worker, which
    # then never hears the signal under test. The worker starts as an interactive ptok would.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _start_worker(home: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), str(home), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=_default_signals)


def _finish(proc: subprocess.Popen) -> str:
    """The worker's output once it has exited. No time budget (a busy machine can take minutes to
    import dagster and unwind): a real hang is caught by the suite's pytest-timeout, and the
    worker is killed on the way out so it never outlives the test."""
    try:
        out, _ = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return out


def test_owner_is_dead_tells_dead_and_reused_pids_from_live_ones():
    assert not owner_is_dead(process_tags())  # this process lives
    assert owner_is_dead({**process_tags(), PID_TAG: str(_dead_pid())})
    assert owner_is_dead({**process_tags(), PROCESS_START_TAG: "1.00"})  # same pid, other process (pid reused)
    assert not owner_is_dead({PID_TAG: str(_dead_pid()), HOST_TAG: "another-host"})  # not ours to judge
    assert not owner_is_dead({})  # launched from the UI: run monitoring's job


def test_run_of_killed_process_is_failed_and_its_slot_freed(home):
    instance = _instance(home)
    run_id = _run_holding_slot(instance, {**process_tags(), PID_TAG: str(_dead_pid())})
    assert reap_dead_runs(instance, log=lambda m: None) == [run_id]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info("accelerator").claimed_slots == []


def test_next_run_finishes_after_a_killed_run_held_the_pool(home, tmp_path):
    instance = _instance(home)
    _run_holding_slot(instance, {**process_tags(), PID_TAG: str(_dead_pid())})
    out_file = tmp_path / "ran.txt"
    out = _finish(_start_worker(home, out_file))
    assert "finished ['materialized']" in out, out
    assert out_file.read_text() == "ran"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_waiting_for_a_slot_held_by_a_live_run_honours_signals(home, tmp_path, sig):
    instance = _instance(home)
    _run_holding_slot(instance, process_tags())  # this test process holds it and lives
    proc = _start_worker(home, tmp_path / "ran.txt")
    lines = []
    try:
        # the event to act on: the runner says it waits (just before its first sleep); a signal
        # sent any time after it must end the run, however long the machine takes to deliver it
        for line in proc.stdout:
            lines.append(line)
            if "waiting for a free 'accelerator' slot" in line:
                break
        else:
            pytest.fail("runner never reported waiting:\n" + "".join(lines))
        os.kill(proc.pid, sig)
        out = _finish(proc)
    finally:  # whatever stopped the test (a failure, pytest-timeout), the worker does not outlive it
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # SIGTERM's default action ends it; SIGINT's KeyboardInterrupt unwinds and Python then
    # re-raises SIGINT, so both die *of the signal*, not of some later error
    assert proc.returncode == -sig, (proc.returncode, "".join(lines) + out)
    assert not (tmp_path / "ran.txt").exists()


# ----------------------------------------------------------------------------- orphaned children

LAUNCHER = """
import subprocess, sys, os, time
from perception_tokens.parent_watch import parent_env
child = subprocess.Popen([sys.executable, "-c",
    "import time; from perception_tokens.parent_watch import exit_when_parent_dies; exit_when_parent_dies(poll_s=0.2); time.sleep(600)"],
    env={**os.environ, **parent_env()})
print(child.pid, flush=True)
time.sleep(600)
"""


def test_child_of_a_killed_launcher_ends_itself():
    import psutil

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, text=True, env=env)
    child = psutil.Process(int(launcher.stdout.readline()))
    try:
        assert child.is_running()
        os.kill(launcher.pid, signal.SIGKILL)  # as a user's kill -9 of ptok
        launcher.wait()
        gone, alive = psutil.wait_procs([child], timeout=60)
        assert child in gone, "the child kept running as an orphan"
    finally:
        if child.is_running():
            child.kill()
