"""``ptok ui`` runs from any directory, and SIGTERM to it stops everything it started.

Before: ``dagster dev -w workspace.yaml`` only worked from the project folder, and a
SIGTERM to ``ptok ui`` ended ``ptok`` alone while ``dagster dev``, the webserver and the
daemon went on serving.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from pipelines.ui import stop_process_tree

PROJECT = Path(__file__).resolve().parents[2]
LOAD_TIMEOUT_S = 300  # loading the definitions imports torch and transformers: slow on a busy 2-core box


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return out


def _location_loaded(port: int) -> bool:
    query = '{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }'
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        entries = json.loads(resp.read())["data"]["workspaceOrError"]["locationEntries"]
    return any(e["name"] == "perception_tokens" and e["loadStatus"] == "LOADED" for e in entries)


def test_stop_process_tree_kills_children_that_ignore_sigterm():
    # A leader with two children that ignore SIGTERM (and one that would stop on it).
    script = "trap '' TERM; (trap '' TERM; sleep 300) & (trap '' TERM; sleep 300) & sleep 300 & wait"
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(psutil.Process(proc.pid).children(recursive=True)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) >= 4
        killed = stop_process_tree(proc, signal.SIGTERM, grace_s=1.0, kill_wait_s=5.0)
        assert _alive(tree) == []
        assert proc.pid in killed  # the leader ignored SIGTERM and had to be killed
        assert len(killed) >= 3
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_ptok_ui_serves_from_another_directory_and_sigterm_stops_all_of_it(tmp_path):
    elsewhere = tmp_path / "elsewhere"  # no workspace.yaml here
    elsewhere.mkdir()
    port = _free_loopback_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PTOK_WORKDIR", "DAGSTER_HOME", "PTOK_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), env.get("PYTHONPATH", "")])
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    log = (tmp_path / "ui.log").open("wb")
    ui = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port)], cwd=elsewhere,
                          env=env, stdout=log, stderr=subprocess.STDOUT,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        loaded = False
        while time.monotonic() < deadline and ui.poll() is None:
            try:
                loaded = _location_loaded(port)
            except (OSError, KeyError, TypeError, ValueError):
                loaded = False
            if loaded:
                break
            time.sleep(2)
        log_text = (tmp_path / "ui.log").read_text(errors="replace")
        assert loaded, f"web UI did not load the code location (rc {ui.poll()}):\n{log_text[-3000:]}"
        # Everything it started, seen before the signal: dagster dev, webserver, daemon, code server.
        tree = psutil.Process(ui.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in tree]
        assert any("webserver" in c for c in commands), commands
        assert any("daemon" in c for c in commands), commands
        # Workdir and DAGSTER_HOME follow the directory it was started from.
        assert (elsewhere / ".ptok" / "dagster_home" / "dagster.yaml").is_file()

        started = time.monotonic()
        ui.send_signal(signal.SIGTERM)  # to ptok only, as a service manager or `kill PID` does
        rc = ui.wait(timeout=60)  # a hang guard, not a timing assertion
        print(f"ptok ui stopped {len(tree)} processes in {time.monotonic() - started:.1f} s (rc {rc})")
        assert rc == 128 + signal.SIGTERM
        assert _alive(tree) == []
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "something still serves on the port"
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.wait()
        for p in tree:  # never leave a server behind, whatever failed above
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        log.close()
