"""End a worker process when the process that launched it dies.

The fine-tune runs in a child process (Dagster Pipes, maybe under torchrun). If the ``ptok``
that launched it is killed with SIGKILL nobody tells the child, which would keep training as
an orphan and hold the GPU. The launcher passes its pid (and start time, so a reused pid is not
mistaken for it) in ``PTOK_PARENT_PID``; a daemon thread in the child polls it and ends the
child's process group when it is gone. No Dagster here: the child imports this before Pipes.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil

ENV = "PTOK_PARENT_PID"


def parent_env() -> dict[str, str]:
    """Environment for a child: this process's pid and start time."""
    me = psutil.Process()
    return {ENV: f"{me.pid}:{me.create_time():.2f}"}


def _alive(spec: str) -> bool:
    pid, _, start = spec.partition(":")
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" == start
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def exit_when_parent_dies(spec: str | None = None, *, poll_s: float = 1.0) -> threading.Thread | None:
    """Start the watch (no-op without ``PTOK_PARENT_PID``). On the parent's death the child sends
    SIGTERM to itself, so its own cleanup (and torchrun's for its workers) runs, then SIGKILL if
    it is still there 10 s later."""
    spec = spec if spec is not None else os.environ.get(ENV)
    if not spec:
        return None

    def watch() -> None:
        while _alive(spec):
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="ptok-parent-watch", daemon=True)
    thread.start()
    return thread
