"""depth_tokens for one partition from given depth maps and a tiny VQ-VAE of the real
architecture: the codes are the model's for those maps, the strings spell them, rows are
reused while the weights stay the same and re-encoded when they change."""

from __future__ import annotations

import dagster as dg
import numpy as np
import torch

from asset_unit_helpers import check_results, make_settings, materialization_metadata, materialize_asset, read_rows, write_input
from perception_tokens import schemas
from perception_tokens.depth import encode_png
from training.vqvae import DepthVQVAE, extract_codes, load_vqvae, save_vqvae, tiny_config

ADE20K_SHARD_0 = dg.MultiPartitionKey({"dataset": "ade20k", "shard": "0"})


def _maps() -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:48, 0:64]
    return {
        "ADE_train_00000001": (x * 4).astype(np.uint8),                       # nearer to the right
        "ADE_train_00000002": (255 - y * 5).astype(np.uint8),                 # nearer at the top
        "ADE_val_00000001": (255 * np.exp(-((x - 32) ** 2 + (y - 24) ** 2) / 200.0)).astype(np.uint8),  # a blob in the middle
    }


def _seed(settings, tmp_path, model_id: str, seed: int) -> DepthVQVAE:
    torch.manual_seed(seed)
    folder = tmp_path / f"vq-{model_id}"
    save_vqvae(DepthVQVAE(tiny_config()), folder)
    write_input(settings, "depth_vqvae", schemas.MODEL_MANIFEST_SCHEMA, [
        {"model_id": model_id, "kind": "depth_vqvae", "path": str(folder), "weights_file": "model.safetensors", "sha256": model_id,
         "config_json": "{}", "metrics_json": "{}", "inputs_json": "{}"}])
    return load_vqvae(folder)


def test_depth_tokens_one_partition(tmp_path):
    settings = make_settings(tmp_path)
    maps = _maps()
    write_input(settings, "pseudo_depth", schemas.PSEUDO_DEPTH_SCHEMA, [
        {"dataset": "ade20k", "split": "training" if "train" in i else "validation", "image_id": i, "image_sha256": f"sha-{i}",
         "teacher": "ground_truth:demo_scenes", "width": 64, "height": 48, "depth_png": encode_png(m), "raw_min": 0.0, "raw_max": 1.0}
        for i, m in maps.items()], partition=("ade20k", "0"))
    model = _seed(settings, tmp_path, "vq-a", seed=0)
    result = materialize_asset(settings, "depth_tokens", partition_key=ADE20K_SHARD_0)

    rows = read_rows(settings, "depth_tokens", ("ade20k", "0"))
    expected = np.concatenate(list(extract_codes(model, list(maps.values()))))
    assert [r["image_id"] for r in rows] == list(maps)
    for r, codes in zip(rows, expected):
        assert r["codes"] == codes.tolist() and len(codes) == 100
        assert r["depth_tokens"] == "<DEPTH_START>" + "".join(f"<DEPTH_{c}>" for c in codes) + "<DEPTH_END>"
        assert (r["vqvae_version"], r["image_sha256"], r["teacher"]) == ("vq-a", f"sha-{r['image_id']}", "ground_truth:demo_scenes")
    meta = materialization_metadata(result, "depth_tokens")
    assert (meta["vqvae_version"], meta["reused"]) == ("vq-a", 0)
    parse = check_results(result)["depth_tokens_parse"]
    assert parse.passed and parse.metadata["rows"].value == 3 and parse.metadata["bad"].value == 0

    # same weights: every row reused, same content; other weights: every row encoded again with them
    again = materialize_asset(settings, "depth_tokens", partition_key=ADE20K_SHARD_0)
    assert materialization_metadata(again, "depth_tokens")["reused"] == 3
    assert materialization_metadata(again, "depth_tokens")["content_hash"] == meta["content_hash"]
    other = _seed(settings, tmp_path, "vq-b", seed=1)
    changed = materialize_asset(settings, "depth_tokens", partition_key=ADE20K_SHARD_0)
    assert materialization_metadata(changed, "depth_tokens")["reused"] == 0
    rows = read_rows(settings, "depth_tokens", ("ade20k", "0"))
    assert [r["vqvae_version"] for r in rows] == ["vq-b"] * 3
    assert [r["codes"] for r in rows] == np.concatenate(list(extract_codes(other, list(maps.values())))).tolist()
