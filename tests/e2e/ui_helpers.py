"""Helpers for the browser test of the web UI: the server process, GraphQL calls, Chromium.

The server is started the way a user starts it (``ptok ui`` = ``dagster dev``: webserver,
daemon and code server), in its own process group so that stopping it also stops the code
server and any run worker it spawned.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

# Flags for a headless Chromium that stays off the network (no updates, sync, QUIC probes).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}


def find_chromium() -> str | None:
    """The system Chromium (Debian's /usr/bin/chromium), or None when it is not installed."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


class GraphQLError(RuntimeError):
    pass


def graphql(base_url: str, query: str, variables: dict[str, Any] | None = None, timeout: float = 10) -> dict[str, Any]:
    """POST one GraphQL query to the webserver; returns ``data`` or raises with the errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        payload = json.loads(resp.read())
    if payload.get("errors"):
        raise GraphQLError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


RUNS_QUERY = """
query Runs($limit: Int) {
  runsOrError(limit: $limit) {
    __typename
    ... on Runs { results { runId status assetSelection { path } } }
    ... on PythonError { message }
  }
}
"""

RUN_STATUS_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status }
    ... on PythonError { message }
  }
}
"""


def list_runs(base_url: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs (id, status, asset selection), newest first."""
    data = graphql(base_url, RUNS_QUERY, {"limit": limit})["runsOrError"]
    if data["__typename"] != "Runs":
        raise GraphQLError(f"runsOrError: {data}")
    return data["results"]


def run_status(base_url: str, run_id: str) -> str:
    data = graphql(base_url, RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
    if data["__typename"] != "Run":
        raise GraphQLError(f"runOrError({run_id}): {data}")
    return data["status"]


def wait_for_run(base_url: str, run_id: str, timeout: float) -> str:
    """Poll until the run reaches a terminal status; returns it (or the last status on timeout)."""
    deadline = time.monotonic() + timeout
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        try:
            status = run_status(base_url, run_id)
        except (OSError, GraphQLError):
            pass  # the webserver can be briefly busy on 2 cores; keep polling
        if status in TERMINAL_RUN_STATUSES:
            return status
        time.sleep(1.0)
    return status


class UIServer:
    """A web UI subprocess with its output in a log file; ``stop`` ends its whole process group."""

    def __init__(self, cmd: Sequence[str], cwd: Path, env: dict[str, str], log_path: Path, port: int):
        self.cmd = list(cmd)
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        self._log = open(self.log_path, "wb")
        # A shell that started pytest in the background may have left SIGINT ignored, and
        # `dagster dev` maps SIGTERM onto the SIGINT handler: restore the default so the
        # server (and the processes it spawns) can be asked to stop.
        self.proc = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def wait_until_loaded(self, location: str, timeout: float) -> dict[str, Any]:
        """Wait until the code location is loaded; returns the asset nodes (key and group)."""
        query = """
        { workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
              locationOrLoadError { __typename ... on PythonError { message } } } } }
          assetNodes { assetKey { path } groupName } }
        """
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"web UI exited early (rc {self.proc.returncode}):\n{self.log_tail()}")
            try:
                data = graphql(self.base_url, query)
                entries = {e["name"]: e for e in data["workspaceOrError"].get("locationEntries", [])}
                entry = entries.get(location)
                if entry and entry["loadStatus"] == "LOADED":
                    if entry["locationOrLoadError"]["__typename"] != "RepositoryLocation":
                        raise RuntimeError(f"code location {location} failed to load: {entry['locationOrLoadError']}")
                    return data
                last_error = f"location entries: {list(entries)}"
            except (OSError, GraphQLError, KeyError) as exc:
                last_error = repr(exc)
            time.sleep(1.0)
        raise TimeoutError(f"web UI did not load {location} within {timeout:.0f} s ({last_error}):\n{self.log_tail()}")

    def stop(self, grace: float = 30) -> None:
        """Interrupt the server's process group (webserver, daemon, code server, run workers stop
        cleanly), wait for its live members to exit, then kill whatever is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        try:
            if _live_group_members(pgid):
                os.killpg(pgid, signal.SIGINT)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and _live_group_members(pgid):
                    self.proc.poll()  # reap the leader so it does not linger as a zombie member
                    time.sleep(0.5)
            if _live_group_members(pgid):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=10)
        finally:
            if self._log:
                self._log.close()


def _live_group_members(pgid: int) -> list[int]:
    """Pids of the processes in group ``pgid`` that have not exited (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited while we looked
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members
