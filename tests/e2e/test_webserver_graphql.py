"""The web UI starts from workspace.yaml on loopback and serves the asset graph over GraphQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]

QUERY = """
{
  workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
      locationOrLoadError { __typename ... on PythonError { message } } } } }
  assetNodes { assetKey { path } groupName kinds description }
}
"""


def _post(url: str, query: str) -> dict:
    req = urllib.request.Request(url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_webserver_serves_asset_graph(tmp_path):
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"), PTOK_WORKDIR=str(tmp_path), DAGSTER_DISABLE_TELEMETRY="1")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 120
        data = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"webserver exited early:\n{proc.stdout.read().decode()[-3000:]}")
            try:
                data = _post(url, QUERY)["data"]
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED" and data["assetNodes"]:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert data is not None, "web UI did not answer within 120 s"
        entry = data["workspaceOrError"]["locationEntries"][0]
        assert entry["name"] == "perception_tokens"
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
        for name in ("ade20k_images", "lvis_images", "lvis_instances", "refcoco_images", "refcoco_refs"):
            assert nodes[name]["groupName"] == "sources"
            assert "parquet" in nodes[name]["kinds"]
            assert nodes[name]["description"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
