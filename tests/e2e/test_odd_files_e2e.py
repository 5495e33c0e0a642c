"""Odd files in a dataset root (issue 21.2): a name that is not UTF-8 and a FIFO.

Before the fix the non-UTF-8 name crashed the observation (UnicodeEncodeError) and every new
file of that root was skipped as "fresh" on every run; the FIFO made the observation open it
and ``ptok materialize`` hung. ``ptok`` runs in a subprocess with a generous timeout, so a
regression fails here instead of hanging the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
CONFIG = """storage: {root: storage}
demo: {enabled: true, root: demo, n_ade20k: 4, n_lvis: 2, n_refcoco: 2, seed: 3, width: 96, height: 64}
datasets: {num_shards: 1, max_reject_fraction: 1.0}
"""


def _ptok(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PTOK_WORKDIR": str(workdir), "PTOK_CONFIG": str(workdir / "config.yaml"),
           "DAGSTER_HOME": str(workdir / "dagster_home"), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)


def test_materialize_rejects_odd_files_and_picks_up_the_new_ones(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "config.yaml").write_text(CONFIG)
    first = _ptok(tmp_path, "materialize", "ade20k_images")
    assert first.returncode == 0, first.stdout + first.stderr
    before = pq.read_table(tmp_path / "storage" / "ade20k_images.parquet")["image_id"].to_pylist()

    training = tmp_path / "demo" / "ADEChallengeData2016" / "images" / "training"
    existing = sorted(training.iterdir())[0]
    shutil.copy(existing, training / "ADE_train_99999999.jpg")  # a new, good image
    shutil.copy(existing, os.path.join(os.fsencode(training), b"ADE_train_\xff\xfe.jpg"))
    os.mkfifo(training / "ADE_train_fifo.jpg")

    second = _ptok(tmp_path, "materialize", "ade20k_images")
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert "fresh, skipped" not in out, out
    after = pq.read_table(tmp_path / "storage" / "ade20k_images.parquet")["image_id"].to_pylist()
    assert sorted(after) == sorted(before + ["ADE_train_99999999"])
    rejects = {Path(r["file"].strip("b'\"")).name: r["reason"] for r in
               pq.read_table(tmp_path / "storage" / "ade20k_images_rejects.parquet").to_pylist()}
    assert rejects == {
        "ADE_train_\\xff\\xfe.jpg": "file name b'ADE_train_\\xff\\xfe.jpg' is not valid UTF-8",
        "ADE_train_fifo.jpg": "image path is not a regular file",
    }
