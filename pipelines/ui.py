"""``ptok ui``: run ``dagster dev`` from any directory and stop all of it on SIGTERM/SIGINT.

``dagster dev`` starts the webserver and the daemon, which start code-location servers.
Run as a plain child, a SIGTERM to ``ptok ui`` ended only ``ptok`` and left the rest
serving. Here ``dagster dev`` gets its own process group; on SIGTERM, SIGINT or SIGHUP the
same signal goes to that group and to every descendant (one that made its own session
would escape the group), and whatever still runs after :data:`GRACE_S` is killed, so
everything is gone within ``GRACE_S + KILL_WAIT_S`` (under 10 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import psutil

__all__ = ["GRACE_S", "KILL_WAIT_S", "dagster_dev_command", "run_dagster_dev", "stop_process_tree"]

# dagster dev's own orderly shutdown (webserver, daemon, code servers one after another)
# took 22 s on a busy 2-core machine: it gets this long, then whatever is left is killed.
GRACE_S = 4.0
KILL_WAIT_S = 2.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def dagster_dev_command(project_root: Path, host: str, port: int) -> list[str]:
    """The ``dagster dev`` command line; the workspace file by absolute path (its
    ``working_directory`` resolves next to it), so the current directory does not matter."""
    workspace = project_root / "workspace.yaml"
    if not workspace.is_file():
        raise FileNotFoundError(f"{workspace}: the project's workspace file is missing")
    return [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", host, "-p", str(port)]


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _signal_all(procs: list[psutil.Process], pgid: int | None, signum: int) -> None:
    if pgid is not None:
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass
    for p in procs:
        try:
            p.send_signal(signum)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def _group_members(pgid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid:
                out.append(p)
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    return out


def _tree(root: subprocess.Popen, pgid: int | None) -> list[psutil.Process]:
    """Members of the group plus descendants of ``root`` (while it runs), each once."""
    procs = _group_members(pgid) if pgid is not None else []
    if root.poll() is None:  # a reaped pid may already belong to someone else
        try:
            procs += psutil.Process(root.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    unique: dict[int, psutil.Process] = {}
    for p in procs:
        unique.setdefault(p.pid, p)
    return list(unique.values())


def stop_process_tree(root: subprocess.Popen, signum: int = signal.SIGTERM, *, grace_s: float = GRACE_S,
                      kill_wait_s: float = KILL_WAIT_S) -> list[int]:
    """Send ``signum`` to the process group that ``root`` leads (it was started with
    ``start_new_session``) and to all its descendants, wait up to ``grace_s`` for them to
    exit, then SIGKILL the rest. Returns the pids that had to be killed."""
    pgid: int | None = root.pid
    if pgid == os.getpgid(0):
        pgid = None  # never signal our own group
    tree = _tree(root, pgid)
    _signal_all(tree, pgid, signum)
    _, alive = psutil.wait_procs(tree, timeout=grace_s) if tree else ([], [])
    # Children started while we were signalling (a code server being spawned) join in.
    known = {p.pid for p in tree}
    alive = _alive(alive + [p for p in _tree(root, pgid) if p.pid not in known])
    killed = [p.pid for p in alive]
    if alive:
        _signal_all(alive, pgid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=kill_wait_s)
    try:
        root.wait(timeout=kill_wait_s)
    except subprocess.TimeoutExpired:
        pass
    return killed


def _default_stop_signals() -> None:
    """In the child: a shell that started us in the background may have set SIGINT to
    ignored, and ignored signals survive exec; dagster dev stops on SIGINT/SIGTERM only
    if they have their default handling."""
    for s in _STOP_SIGNALS:
        signal.signal(s, signal.SIG_DFL)


def run_dagster_dev(cmd: list[str], *, env: dict[str, str], log: Callable[[str], None] = print) -> int:
    """Run ``cmd`` in its own process group until it exits or this process is told to stop."""
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in _STOP_SIGNALS}
    try:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_default_stop_signals)
        try:
            while proc.poll() is None and not received:
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            # Also when dagster dev ended by itself: what it started must not outlive it.
            signum = received[0] if received else signal.SIGTERM
            if received:
                log(f"stopping dagster dev (pid {proc.pid}) and its children on {signal.Signals(signum).name}")
            killed = stop_process_tree(proc, signum)
            if killed:
                log(f"killed {len(killed)} process(es) that did not stop within {GRACE_S:.0f} s: {killed}")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        return 128 + received[0]
    return proc.returncode
