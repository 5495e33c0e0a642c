"""pseudo_depth on demo data: ground-truth teacher values, partitions, incremental re-runs."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pyarrow.parquet as pq

from conftest import small_settings
from perception_tokens.demo import load_ground_truth_depth
from perception_tokens.depth import decode_png, normalize_depth
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph


def test_pseudo_depth_partitions_match_ground_truth_and_are_incremental(workdir):
    settings = small_settings(workdir)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    report = materialize_graph(defs, instance, "group:sources or key:pseudo_depth", log=lambda m: None)
    assert not report.failed, report.failed

    storage = workdir / "storage"
    files = sorted(p.relative_to(storage / "pseudo_depth").as_posix() for p in (storage / "pseudo_depth").rglob("[!.]*.parquet"))
    assert files == ["ade20k/0.parquet", "ade20k/1.parquet", "lvis/0.parquet", "lvis/1.parquet", "refcoco/0.parquet", "refcoco/1.parquet"]
    depth = pq.read_table([str(storage / "pseudo_depth" / f) for f in files])
    n_images = sum(pq.read_metadata(str(storage / f"{d}_images.parquet")).num_rows for d in ("ade20k", "lvis", "refcoco"))
    assert depth.num_rows == n_images

    row = depth.slice(0, 1).to_pylist()[0]
    got = decode_png(row["depth_png"])
    assert got.dtype == np.uint8 and got.shape == (row["height"], row["width"])
    truth = load_ground_truth_depth(settings.demo_root, row["dataset"], row["image_id"])
    expected, lo, hi = normalize_depth((1.0 / truth).astype(np.float32))
    assert np.array_equal(got, expected)
    assert abs(row["raw_min"] - lo) < 1e-6 and abs(row["raw_max"] - hi) < 1e-6
    assert got.min() == 0 and got.max() == 255

    event = instance.get_latest_materialization_event(dg.AssetKey("pseudo_depth"))
    meta = event.asset_materialization.metadata
    assert meta["teacher"].value == "ground_truth:demo_scenes"
    assert "data:image/png;base64" in meta["examples"].value

    # forcing a re-run reuses every row (same images, same teacher) and writes identical content
    pk = dg.MultiPartitionKey({"dataset": "ade20k", "shard": "0"})
    before = event.asset_materialization.tags["dagster/data_version"]
    result = dg.materialize(list(defs.assets), selection=["pseudo_depth", "pseudo_depth_rejects"], partition_key=pk, instance=instance,
                            resources=defs.resources)
    assert result.success
    mat = [m for m in result.asset_materializations_for_node("pseudo_depth") if m.asset_key.path == ["pseudo_depth"]][0]
    assert mat.metadata["images_labelled"].value == 0
    assert mat.metadata["images_reused"].value == pq.read_metadata(str(storage / "pseudo_depth/ade20k/0.parquet")).num_rows


def test_teacher_failing_on_every_image_fails_the_partition(workdir, monkeypatch):
    from pipeline_lib.resources import DepthTeacherResource

    class BrokenTeacher:
        identity = "broken"

        def predict(self, images, ids):
            raise RuntimeError("CUDA error: no kernel image is available")

    settings = small_settings(workdir)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    assert not materialize_graph(defs, instance, "group:sources", log=lambda m: None).failed
    monkeypatch.setattr(DepthTeacherResource, "build", lambda self: BrokenTeacher())
    pk = dg.MultiPartitionKey({"dataset": "ade20k", "shard": "0"})
    result = dg.materialize(list(defs.assets), selection=["pseudo_depth", "pseudo_depth_rejects"], partition_key=pk,
                            instance=instance, resources=defs.resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    err = failure.step_failure_data.error
    while err.cause is not None:
        err = err.cause
    assert "labelled none of the" in err.message and "CUDA error" in err.message
    assert not (workdir / "storage" / "pseudo_depth" / "ade20k" / "0.parquet").exists()
