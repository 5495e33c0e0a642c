"""``profile: aurora`` on a small demo world: marked points, curriculum and its checks in the reference's style."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from conftest import check_results, materialized_world, small_settings


@pytest.fixture(scope="module")
def aurora_world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("aurora")
    settings = small_settings(
        workdir, profile="aurora",
        # no Depth Anything weights here: the demo's ground truth stands in for the V1 teacher,
        # and the tiny VQ-VAE for the 320 px reference one (both aurora presets are unit-tested)
        depth={"preset": "custom", "teacher": "ground_truth"},
        vqvae={"preset": "tiny", "epochs": 2, "min_closest_point_agreement": 0.0, "min_codebook_usage": 0.0},
        # epoch_size_by_skill {}: N = the atomic pool (the reference's 20000 / 5000 exceed the demo's pools; two skills
        # in one run need one N anyway)
        curriculum={"epochs": 3, "percents": [1.0, 0.5, 0.0], "marked_fraction": 1.0, "marked_max_images": 2, "epoch_size_by_skill": {},
                    "tasks": ["depth_atomic", "depth_cot", "depth_direct", "count_atomic", "count_cot", "count_direct"]},
    )
    with materialized_world(workdir, settings, "*curriculum") as (defs, instance):
        yield workdir, settings, instance


def test_aurora_profile_fills_every_stage(aurora_world):
    _, settings, _ = aurora_world
    assert settings.profile == "aurora"
    assert settings.datasets.ade20k_splits == ["training"] and settings.datasets.lvis_splits == ["train"]
    assert (settings.curriculum.style, settings.curriculum.mixing) == ("aurora", "sequential")
    assert settings.curriculum.epochs == 3  # the file's value wins over the profile's 10
    assert (settings.finetune.image_resize, settings.finetune.conversation) == ("squash336_nearest", "vicuna_v1")  # --version v1
    assert settings.evaluation.conversation == "llava_v1"  # model_vqa.py --conv-mode
    assert settings.evaluation.max_new_tokens == 1024
    assert (settings.vqvae.data, settings.vqvae.shuffle) == ("ade20k_train", "permutation")
    assert (settings.finetune.effective_global_batch_size, settings.finetune.new_row_init) == (128, "model_init")
    assert (settings.evaluation.prompts, settings.evaluation.constrain_boxes, settings.evaluation.numerics) == ("paper", False, "reference")


def test_aurora_marked_points_and_curriculum(aurora_world):
    workdir, settings, instance = aurora_world
    storage = workdir / "storage"
    marked = pq.read_table(storage / "marked_points.parquet").to_pylist()
    assert 1 <= len(marked) <= 2 and {m["dataset"] for m in marked} == {"ade20k"} and {m["split"] for m in marked} == {"training"}
    for m in marked:
        assert m["variant"] == "aurora" and all(0 <= v <= 300 for v in m["xs"] + m["ys"])
        assert m["depth_values"] == sorted(m["depth_values"]) and m["answer"] == m["letters"][-1]
        assert m["marked_png"][:3] == b"\xff\xd8\xff"  # JPEG, as add_marks_ade.ipynb cell 4 saves it
        img = np.array(Image.open(io.BytesIO(m["marked_png"]))).astype(int)
        x, y = m["xs"][0], m["ys"][0]
        r, g, b = img[y, x - 4]  # the circle's left edge: red, up to JPEG's error
        assert img.shape == (336, 336, 3) and r > 120 and r > 2 * max(g, b), (r, g, b)

    cur = pq.read_table(storage / "curriculum.parquet").to_pylist()
    assert {r["image_id"] for r in cur if r["dataset"] == "ade20k"} <= {  # training split only
        r["image_id"] for r in pq.read_table(storage / "ade20k_images.parquet").to_pylist() if r["split"] == "training"}
    atomic = [r for r in cur if r["kind"] == "atomic"]
    by_epoch = Counter((r["epoch"], r["kind"] == "atomic") for r in cur)
    n = by_epoch[(0, True)]
    assert n > 0 and by_epoch[(1, True)] == int(n * 0.5) and by_epoch[(2, True)] == 0
    # reasoning block: after the epoch's atomic samples, direct before CoT for each image
    last = [r for r in cur if r["epoch"] == 2]
    assert [r["kind"] for r in last][:2] == ["direct", "cot"] and last[0]["image_id"] == last[1]["image_id"]
    cot = next(r for r in cur if r["task"] == "depth_cot")
    assert re.match(r"^(Point [A-E] is located at \(x = \d+ y = \d+\),)+", cot["answer"].replace(").The", "),The"))
    assert "Since point " in cot["answer"] and cot["answer"].endswith("is closer to the camera.")
    count = [r for r in atomic if r["task"] == "count_atomic"]
    assert count and all(r["answer"].startswith("Here are the bounding boxes for the ") or r["answer"].startswith("There are no ")
                         for r in count)
    counted_ids = {r["image_id"] for r in count}
    assert counted_ids.isdisjoint({r["image_id"] for r in cur if r["task"] in ("count_cot", "count_direct")})

    # the tokenizer trained on the ADE20K training maps alone (ait_depth_vqvae.py:21), one permutation per epoch
    vq_meta = instance.get_latest_materialization_event(dg.AssetKey("depth_vqvae")).asset_materialization.metadata
    from training.vqvae.launch import is_holdout

    depth_rows = [r for f in sorted((storage / "pseudo_depth").rglob("[!.]*.parquet"))
                  for r in pq.read_table(f, columns=["dataset", "split", "image_id"]).to_pylist()]
    n_ade_train = sum(1 for r in depth_rows if (r["dataset"], r["split"]) == ("ade20k", "training")
                      and not is_holdout(r["image_id"], settings.vqvae.holdout_fraction))  # the tiny preset holds 15% out
    assert 0 < n_ade_train < len(depth_rows)  # LVIS and RefCOCO maps exist but do not train the tokenizer
    assert (vq_meta["training_data"].value, vq_meta["training_maps"].value) == ("ade20k_train", n_ade_train)
    assert vq_meta["epoch_order"].value == "permutation (seed + epoch)"
    cur_meta = instance.get_latest_materialization_event(dg.AssetKey("curriculum")).asset_materialization.metadata
    assert cur_meta["selection_count_image_ids"].value.endswith("Aurora-perception/Bbox absent: seeded draw")

    meta = instance.get_latest_materialization_event(dg.AssetKey("curriculum")).asset_materialization.metadata
    text = Path(meta["llava_json"].value).read_text()
    assert text.startswith('[\n  {\n    "id": ')  # json.dump(indent=2), as the notebooks write
    assert all(ord(c) < 128 for c in text)
    results = check_results(instance)
    for check in ("curriculum_tokens_parse", "curriculum_images_resolve", "curriculum_mix_matches_schedule", "marked_points_consistent"):
        assert results[check] is True, (check, results)
