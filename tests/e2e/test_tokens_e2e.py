"""VQ-VAE training, depth tokens and box tokens on demo data, through Dagster."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pyarrow.parquet as pq

from conftest import check_results, small_settings
from perception_tokens.vocab import decode_box, decode_depth
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph


def test_vqvae_tokens_and_boxes(workdir):
    settings = small_settings(workdir, vqvae={"epochs": 3, "min_closest_point_agreement": 0.0, "min_codebook_usage": 0.0})
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    report = materialize_graph(defs, instance, "*", log=lambda m: None)
    assert not report.failed, report.failed
    storage = workdir / "storage"

    manifest = pq.read_table(storage / "depth_vqvae.parquet").to_pylist()
    assert len(manifest) == 1
    m = manifest[0]
    metrics = json.loads(m["metrics_json"])
    assert 0.0 <= metrics["closest_point_agreement"] <= 1.0 and metrics["usage"] >= 1
    import hashlib
    from pathlib import Path
    weights = Path(m["path"]) / m["weights_file"]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == m["sha256"]

    tokens = pq.read_table([str(p) for p in sorted((storage / "depth_tokens").rglob("[!.]*.parquet"))])
    depth_rows = sum(pq.read_metadata(str(p)).num_rows for p in (storage / "pseudo_depth").rglob("[!.]*.parquet"))
    assert tokens.num_rows == depth_rows
    row = tokens.slice(0, 1).to_pylist()[0]
    assert len(row["codes"]) == 100 and all(0 <= c < 128 for c in row["codes"])
    assert decode_depth(row["depth_tokens"]) == row["codes"]
    assert row["vqvae_version"] == m["model_id"]

    boxes = pq.read_table(storage / "box_tokens.parquet")
    n_lvis = pq.read_metadata(str(storage / "lvis_instances.parquet")).num_rows
    n_refs = len(set(pq.read_table(storage / "refcoco_refs.parquet", columns=["ref_id"])["ref_id"].to_pylist()))
    n_rejects = pq.read_metadata(str(storage / "box_tokens_rejects.parquet")).num_rows
    assert boxes.num_rows + n_rejects == n_lvis + n_refs
    b = boxes.slice(0, 1).to_pylist()[0]
    g = decode_box(b["box_tokens"])
    assert (g.x1, g.y1, g.x2, g.y2) == (b["x1"], b["y1"], b["x2"], b["y2"])
    assert 0 <= b["x1"] < b["x2"] <= 335

    results = check_results(instance)
    assert results["depth_tokens_parse"] is True
    assert "vqvae_closest_point_upper_bound" in results  # thresholds set to 0 here; the demo config enforces 95%
