"""The CLI run summary lists failed asset checks and exits 1 on a failed ERROR check (issue 21).

Before the fix an LVIS annotation file with ``categories: []`` (every annotation rejected as an
unknown category) failed ``lvis_instances_reject_rate`` at ERROR severity, and ``ptok
materialize`` still said "0 failed step(s)" and exited 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipeline_lib.demo_world import ensure_demo_datasets
from pipelines.cli import run_exit_code
from pipelines.runner import materialize_graph

ROOT = Path(__file__).resolve().parents[2]
DEMO = {"n_ade20k": 3, "n_lvis": 4, "n_refcoco": 2, "seed": 0, "width": 96, "height": 72}
CONFIG = """\
storage:
  root: storage
demo:
  enabled: true
  root: demo
  n_ade20k: 3
  n_lvis: 4
  n_refcoco: 2
  seed: 0
  width: 96
  height: 72
datasets:
  num_shards: 1
  max_reject_fraction: 0.05
"""


def test_materialize_exits_1_and_names_a_failed_error_check(tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG)
    # the demo world as the pipeline would write it, then the LVIS release with its categories lost
    ensure_demo_datasets(tmp_path / "demo", **DEMO)
    for path in sorted((tmp_path / "demo" / "lvis").glob("lvis_v1_*.json")):
        doc = json.loads(path.read_text())
        assert doc["annotations"]
        path.write_text(json.dumps({**doc, "categories": []}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PTOK_CONFIG": str(tmp_path / "config.yaml"),
           "PTOK_WORKDIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home"), "COLUMNS": "200"}
    # no time budget: the suite's pytest-timeout catches a hang
    proc = subprocess.run([sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())",
                           "materialize", "key:lvis_instances"], cwd=tmp_path, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert "0 failed step(s), 1 failed check(s)" in out, out[-3000:]
    assert "FAILED CHECK (ERROR) lvis_instances:lvis_instances_reject_rate: no rows were read at all" in out, out[-3000:]
    assert proc.returncode == 1, out[-3000:]


@dg.asset
def counted() -> int:
    return 3


@dg.asset_check(asset=counted)
def counted_is_even(counted: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=counted % 2 == 0, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"value": counted})


def test_a_failed_warn_check_is_listed_and_leaves_the_exit_code_0(tmp_path, capsys):
    defs = dg.Definitions(assets=[counted], asset_checks=[counted_is_even], resources={"io_manager": dg.mem_io_manager})
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        report = materialize_graph(defs, instance, "*", log=lambda m: None)
    assert not report.failed and report.error_checks == []
    assert [(c.check, c.severity, c.detail) for c in report.failed_checks] == [("counted:counted_is_even", "WARN", "value 3")]
    assert run_exit_code(report) == 0
    assert "FAILED CHECK (WARN) counted:counted_is_even: value 3" in capsys.readouterr().out
