"""profile aurora trains the depth tokenizer on the reference's data and epoch order: the ADE20K
training maps only (ait_depth_vqvae.py:21, ADE_depth/), each epoch one seeded permutation of
every map (DistributedSampler(shuffle=True) + set_epoch, train_depth_vqvae_dist.py:83,156-158).
The project profile keeps every dataset and its bounded shuffle buffer."""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_lib.settings import settings_from_dict
from training.vqvae.launch import TRAINING_DATA, parquet_depth_pngs
from training.vqvae.model import tiny_config
from training.vqvae.train import VQVAETrainConfig, train_vqvae

# (dataset, split, image_id): ADE20K train and validation, LVIS and RefCOCO maps in one table
ROWS = [("ade20k", "training", "ADE_train_1"), ("lvis", "train", "11"), ("ade20k", "validation", "ADE_val_1"),
        ("ade20k", "training", "ADE_train_2"), ("refcoco", "train", "r5"), ("ade20k", "training", "ADE_train_3")]


def _pseudo_depth(tmp_path):
    """A pseudo_depth-like Parquet file whose map i is filled with the value i (to tell maps apart)."""
    pngs = [cv2.imencode(".png", np.full((8, 8), i, np.uint8))[1].tobytes() for i in range(len(ROWS))]
    table = pa.table({"dataset": [r[0] for r in ROWS], "split": [r[1] for r in ROWS], "image_id": [r[2] for r in ROWS],
                      "depth_png": pngs})
    path = tmp_path / "pseudo_depth.parquet"
    pq.write_table(table, path)
    return [path]


def _values(pngs) -> list[int]:
    return [int(cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_UNCHANGED)[0, 0]) for p in pngs]


def test_ade20k_train_keeps_only_the_ade20k_training_maps(tmp_path):
    paths = _pseudo_depth(tmp_path)
    assert _values(parquet_depth_pngs(paths, holdout=False, fraction=0.0, only=TRAINING_DATA["ade20k_train"])) == [0, 3, 5]
    assert _values(parquet_depth_pngs(paths, holdout=False, fraction=0.0, only=TRAINING_DATA["all_datasets"])) == [0, 1, 2, 3, 4, 5]
    assert list(parquet_depth_pngs(paths, holdout=False, fraction=0.0, only=TRAINING_DATA["ade20k_train"], column="image_id")) == [
        "ADE_train_1", "ADE_train_2", "ADE_train_3"]


def test_profiles_choose_the_training_maps_and_the_epoch_order():
    aurora = settings_from_dict({"profile": "aurora", "depth": {"preset": "custom", "teacher": "ground_truth"},
                                 "vqvae": {"preset": "tiny"}}).vqvae
    assert (aurora.data, aurora.shuffle) == ("ade20k_train", "permutation")
    project = settings_from_dict({}).vqvae
    assert (project.data, project.shuffle) == ("all_datasets", "buffer")


def test_permutation_visits_every_map_once_per_epoch_in_a_seeded_order_that_changes_per_epoch(tmp_path):
    n, epochs, seed = 12, 3, 4
    maps = [np.full((16, 16), 20 * i, np.uint8) for i in range(n)]
    seen: list[int] = []

    def decode(i: int) -> np.ndarray:  # the trainer decodes each batch's items in training order
        seen.append(i)
        return maps[i]

    cfg = VQVAETrainConfig(epochs=epochs, batch_size=1, lr=1e-3, seed=seed, shuffle="permutation", device="cpu")
    train_vqvae(tiny_config(hidden_channels=(8, 8, 8), code_dim=8), cfg, lambda: range(n), tmp_path / "run", log=lambda _m: None,
                resume=False, progress=False, decode=decode)
    orders = [seen[e * n:(e + 1) * n] for e in range(epochs)]
    assert len(seen) == n * epochs
    for e, order in enumerate(orders):
        assert sorted(order) == list(range(n))  # every map exactly once
        assert order == np.random.default_rng(seed + e).permutation(n).tolist()  # seeded by seed + epoch
    assert orders[0] != orders[1] != orders[2] != orders[0]
