"""marked_points and curriculum on demo data: schedule arithmetic, token validity, LLaVA JSON round trip."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import dagster as dg
import numpy as np
import pyarrow.parquet as pq

from conftest import check_results, small_settings
from perception_tokens.curriculum.llava_json import read_llava_json
from perception_tokens.depth import decode_png
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph


def test_curriculum_from_demo_graph(workdir):
    settings = small_settings(
        workdir,
        vqvae={"epochs": 2, "min_closest_point_agreement": 0.0, "min_codebook_usage": 0.0},
        curriculum={"epochs": 3, "percents": [1.0, 0.5, 0.0], "epoch_size": 20, "marked_fraction": 1.0},
    )
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    report = materialize_graph(defs, instance, "*", log=lambda m: None)
    assert not report.failed, report.failed
    storage = workdir / "storage"

    # marked points: answer = the letter with the largest depth at its point, on the 336 grid
    marked = pq.read_table(storage / "marked_points.parquet").to_pylist()
    depth = {r["image_id"]: r["depth_png"] for r in pq.read_table([str(p) for p in (storage / "pseudo_depth").rglob("[!.]*.parquet")]).to_pylist()}
    assert marked
    for m in marked[:10]:
        d = cv2.resize(decode_png(depth[m["image_id"]]), (336, 336), interpolation=cv2.INTER_LINEAR)
        values = [int(d[y, x]) for x, y in zip(m["xs"], m["ys"])]
        assert m["letters"][int(np.argmax(values))] == m["answer"]
        assert 2 <= m["n_points"] <= 5 and m["labels_inside"]
        img = cv2.imdecode(np.frombuffer(m["marked_png"], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (336, 336, 3)

    # schedule: 3 epochs of 20 samples, atomic share 20 / 10 / 0
    cur = pq.read_table(storage / "curriculum.parquet").to_pylist()
    assert [r["position"] for r in cur] == list(range(60))
    per_epoch = Counter((r["epoch"], r["kind"] == "atomic") for r in cur)
    assert per_epoch[(0, True)] == 20 and per_epoch[(1, True)] == 10 and per_epoch[(2, True)] == 0
    assert {r["task"] for r in cur if r["epoch"] == 2} <= {"depth_cot", "depth_direct", "count_cot", "count_direct", "ground_depth"}

    # lineage ids lead back to sources
    sample = next(r for r in cur if r["task"] == "depth_atomic")
    assert sample["dataset"] in {"ade20k", "lvis", "refcoco"} and sample["depth_token_version"]

    # the LLaVA JSON round-trips and its images resolve
    meta = instance.get_latest_materialization_event(dg.AssetKey("curriculum")).asset_materialization.metadata
    path = Path(meta["llava_json"].value)
    records = read_llava_json(path)
    assert len(records) == 60
    assert records[0]["conversations"][0]["value"].startswith("<image>\n")
    assert json.loads(cur[0]["conversations"]) == records[0]["conversations"]
    for rec in records:
        assert (path.parent / "images" / rec["image"]).is_file()

    # every check on these stages ran and passed
    results = check_results(instance)
    for check in ("curriculum_tokens_parse", "curriculum_images_resolve", "curriculum_mix_matches_schedule", "marked_points_consistent"):
        assert results[check] is True, (check, results)
