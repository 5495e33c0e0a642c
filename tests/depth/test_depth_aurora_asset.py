"""pseudo_depth materialised with the run.py-style V1 teacher (the aurora handling at tiny size)."""

from __future__ import annotations

import cv2
import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import torch

from perception_tokens.depth import build_tiny_dpt_dinov2, decode_png
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph
from pipeline_lib.settings import settings_from_dict


def test_pseudo_depth_stores_run_py_grayscale_maps(tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    checkpoint = tmp_path / "depth_anything_tiny14.pth"
    torch.save(build_tiny_dpt_dinov2(seed=1).state_dict(), checkpoint)
    settings = settings_from_dict({
        "storage": {"root": str(tmp_path / "storage")},
        "demo": {"enabled": True, "root": str(tmp_path / "demo"), "n_ade20k": 4, "n_lvis": 2, "n_refcoco": 2,
                 "seed": 3, "width": 160, "height": 120},
        "datasets": {"num_shards": 1},
        # the aurora preset's handling, at the tiny test size (the preset itself fixes vits / 518)
        "depth": {"teacher": "depth_anything_hub", "checkpoint": str(checkpoint), "version": 1, "encoder": "tiny",
                  "implementation": "dpt_dinov2", "resize": "keep_aspect", "input_size": 28, "autocast": False,
                  "device": "cpu", "batch_size": 3},
    })
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    report = materialize_graph(defs, instance, "group:sources or key:pseudo_depth", log=lambda m: None)
    assert not report.failed, report.failed

    table = pq.read_table(str(tmp_path / "storage" / "pseudo_depth" / "ade20k" / "0.parquet"))
    assert table.num_rows == pq.read_metadata(str(tmp_path / "storage" / "ade20k_images.parquet")).num_rows
    for row in table.to_pylist():
        stored = cv2.imdecode(np.frombuffer(row["depth_png"], np.uint8), cv2.IMREAD_UNCHANGED)
        assert stored.shape == (row["height"], row["width"], 3)  # run.py --grayscale
        assert (stored[..., 0] == stored[..., 1]).all() and (stored[..., 0] == stored[..., 2]).all()
        depth = decode_png(row["depth_png"])
        assert depth.shape == (row["height"], row["width"]) and depth.min() == 0 and depth.max() == 255
    event = instance.get_latest_materialization_event(dg.AssetKey("pseudo_depth"))
    assert event.asset_materialization.metadata["teacher"].value.endswith(":dpt_dinov2:in28:keep_aspect")
