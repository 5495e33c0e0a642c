"""Shared fixtures for whole-graph tests: a small demo world in a temporary working folder."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import pytest

from pipeline_lib.settings import settings_from_dict

SMALL = {"n_ade20k": 8, "n_lvis": 8, "n_refcoco": 6, "seed": 3, "width": 160, "height": 120}


@contextlib.contextmanager
def materialized_world(workdir: Path, settings, selection: str = "*"):
    """Materialize ``selection`` of ``settings``' graph with PTOK_WORKDIR and DAGSTER_HOME pointed
    at ``workdir`` (restored afterwards); yields ``(defs, instance)``. For module-scoped worlds,
    where monkeypatch is not available."""
    from pipelines.definitions import build_definitions
    from pipelines.instance import get_instance
    from pipelines.runner import materialize_graph

    saved = {k: os.environ.get(k) for k in ("PTOK_WORKDIR", "DAGSTER_HOME")}
    os.environ["PTOK_WORKDIR"] = str(workdir)
    os.environ["DAGSTER_HOME"] = str(workdir / "dagster_home")
    try:
        defs = build_definitions(settings)
        instance = get_instance()  # persistent (SQLite under DAGSTER_HOME), as the CLI and UI see it
        report = materialize_graph(defs, instance, selection, log=lambda m: None)
        assert not report.failed, report.failed
        yield defs, instance
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def small_settings(workdir: Path, **overrides):
    raw = {
        "storage": {"root": str(workdir / "storage")},
        "demo": {"enabled": True, "root": str(workdir / "demo"), **SMALL},
        "datasets": {"num_shards": 2},
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:  # a top-level value such as profile="aurora"
            raw[section] = values
    return settings_from_dict(raw)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_results(instance) -> dict[str, bool]:
    """Latest pass/fail of every asset check evaluated on ``instance``, by check name."""
    from dagster import DagsterEventType

    out: dict[str, bool] = {}
    for run in reversed(instance.get_runs()):  # oldest first, so later evaluations win
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            data = entry.dagster_event.event_specific_data
            out[data.check_name] = data.passed
    return out
