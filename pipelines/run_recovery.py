"""Recovery after a killed run: dead runs are failed, their pool slots freed, and waiting for a
slot stays interruptible.

A ``ptok`` process killed with SIGKILL leaves its run STARTED and its ``accelerator`` pool slot
claimed; Dagster's in-process executor would then wait for that slot forever, and while it waits
it captures SIGINT/SIGTERM without checking them. So before each run the runner
(1) fails every run this host started whose process is gone (runs carry the launching process's
pid and start time as tags, so a reused pid is not mistaken for the old process) and frees the
slots of runs that are no longer running, and (2) waits for a free slot itself, outside Dagster's
signal capture, so Ctrl-C and SIGTERM end a waiting ``ptok`` at once.
Runs launched from the UI are covered by Dagster's run monitoring (enabled in dagster.yaml).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable

import psutil
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

PID_TAG = "ptok/pid"
HOST_TAG = "ptok/host"
PROCESS_START_TAG = "ptok/process_start"

_ACTIVE = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.CANCELING]


def _process_start(pid: int) -> str | None:
    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def process_tags() -> dict[str, str]:
    """Tags naming this process; a later ptok uses them to tell whether the run's owner lives."""
    pid = os.getpid()
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), PROCESS_START_TAG: _process_start(pid) or ""}


def owner_is_dead(tags: dict[str, str]) -> bool:
    """True only when the run was started by a ptok process on this host that no longer runs.
    Runs from elsewhere (UI, another host) are left to Dagster's run monitoring."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return False
    start = _process_start(int(tags[PID_TAG]))
    return start is None or start != tags.get(PROCESS_START_TAG)


def reap_dead_runs(instance: DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Fail runs whose ptok process died and free every pool slot held by a run not running.
    Returns the ids of the runs it failed."""
    reaped = []
    for run in instance.get_runs(filters=RunsFilter(statuses=_ACTIVE)):
        if owner_is_dead(run.tags):
            instance.report_run_failed(run, f"the ptok process {run.tags[PID_TAG]} that ran this run is gone (killed); "
                                            "marked failed and its pool slots freed by a later ptok")
            reaped.append(run.run_id)
            log(f"  ! run {run.run_id[:8]} was killed (process {run.tags[PID_TAG]} gone): marked failed, slots freed")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():  # runs holding or waiting for a slot, any pool
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return reaped


def wait_for_pool_slot(instance: DagsterInstance, pool: str | None, log: Callable[[str], None] = print,
                       poll_s: float = 1.0) -> None:
    """Block until ``pool`` has a free slot (or has no limit). Plain sleeps in the caller's thread:
    SIGINT raises KeyboardInterrupt and SIGTERM ends the process as usual. Dead owners are reaped
    on every poll, so a slot held by a run killed meanwhile is freed too."""
    storage = instance.event_log_storage
    if pool is None or not storage.supports_global_concurrency_limits:
        return
    said = False
    while True:
        info = storage.get_concurrency_info(pool)
        limit = info.slot_count or info.limit  # slot_count is 0 until Dagster first applies the default limit
        if not limit or len(info.claimed_slots) < limit:
            return
        if not said:
            holders = sorted({s.run_id[:8] for s in info.claimed_slots})
            log(f"  … waiting for a free '{pool}' slot (held by run(s) {', '.join(holders)}); Ctrl-C to stop")
            said = True
        time.sleep(poll_s)
        reap_dead_runs(instance, log=lambda m: None)
