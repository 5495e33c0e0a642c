"""depth_vqvae with ``vqvae.init_checkpoint``: a reference vae-final.pt is adopted (epochs 0)
and written back in the reference format; depth_tokens then carry that checkpoint's codes."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import torch

from conftest import small_settings
from perception_tokens.depth import decode_png
from perception_tokens.vocab import decode_depth
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph
from training.vqvae import load_vqvae
from training.vqvae.extract import extract_codes
from training.vqvae.reference_format import load_reference_vqvae, read_reference_state

GOLDEN_CKPT = Path(__file__).resolve().parents[1] / "data" / "vqvae_golden" / "vae-tiny-ref.pt"


def test_reference_checkpoint_is_adopted_and_exported(workdir):
    settings = small_settings(
        workdir,
        vqvae={"preset": "aurora", "init_checkpoint": str(GOLDEN_CKPT), "epochs": 0, "device": "cpu"},
    )
    assert settings.vqvae.batch_size == 8 and settings.vqvae.lr_decay_every == 500  # the reference's schedule
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    report = materialize_graph(defs, instance, "group:sources or key:pseudo_depth or key:depth_vqvae or key:depth_tokens",
                               log=lambda m: None)
    assert not report.failed, report.failed

    storage = workdir / "storage"
    row = pq.read_table(storage / "depth_vqvae.parquet").to_pylist()[0]
    adopted = load_vqvae(row["path"])
    original = read_reference_state(GOLDEN_CKPT)
    assert adopted.config.architecture == "aurora" and adopted.config.image_size == 80
    assert all(torch.equal(original[k], v) for k, v in adopted.state_dict().items())  # not trained: adopted
    exported = Path(row["path"]) / "vae-final.pt"
    raw = torch.load(exported, weights_only=True)["weights"]
    assert set(raw) == set(original) and all(torch.equal(raw[k], original[k]) for k in raw)
    metrics = json.loads(row["metrics_json"])
    assert metrics["n_images"] > 0  # no hold-out in aurora: quality measured on all maps

    event = instance.get_latest_materialization_event(dg.AssetKey("depth_vqvae"))
    meta = event.asset_materialization.metadata
    assert meta["quality_measured_on"].value == "all maps (no hold-out)"
    assert meta["init_checkpoint"].value == str(GOLDEN_CKPT)

    # the graph's depth tokens are the reference checkpoint's codes for the same maps
    depth = pq.read_table(next((storage / "pseudo_depth").rglob("[!.]*.parquet"))).to_pylist()[:3]
    tokens = {r["image_id"]: r for r in pq.read_table([str(p) for p in (storage / "depth_tokens").rglob("[!.]*.parquet")]).to_pylist()}
    ref_model = load_reference_vqvae(GOLDEN_CKPT)
    want = np.concatenate(list(extract_codes(ref_model, [decode_png(r["depth_png"]) for r in depth])))
    for r, codes in zip(depth, want):
        assert decode_depth(tokens[r["image_id"]]["depth_tokens"]) == codes.tolist()
