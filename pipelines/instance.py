"""The persistent Dagster instance under the project's working folder (telemetry off)."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from pipeline_lib.settings import workdir

DAGSTER_YAML = """\
# Written by ptok. SQLite storage under this folder; see README for Postgres at scale.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
# runs launched from the UI whose worker dies are failed and their pool slots freed by the
# daemon; runs of `ptok` are checked by the next `ptok` (pipelines/run_recovery.py)
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 60
"""


def dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or workdir() / ".ptok" / "dagster_home")
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    return home


def get_instance() -> DagsterInstance:
    dagster_home()
    return DagsterInstance.get()
