"""marked_points from given depth maps: points where the depth says, the answer is the nearest
point, a flat depth map becomes a reject row, and the consistency check passes."""

from __future__ import annotations

import cv2
import numpy as np

from asset_unit_helpers import check_results, make_settings, materialization_metadata, materialize_asset, read_rows, write_input
from perception_tokens import schemas
from perception_tokens.depth import encode_png

FLAT = "ADE_train_00000002"


def _depth_maps(image_ids) -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:72, 0:96]
    ramp = (x * 255 // 95).astype(np.uint8)  # nearer to the right: points must differ by 25 levels
    return {i: np.full((72, 96), 128, np.uint8) if i == FLAT else (ramp if n % 2 == 0 else ramp[:, ::-1].copy())
            for n, i in enumerate(image_ids)}


def test_marked_points_rows_reject_and_check(tiny_world, tmp_path):
    settings, manifest = tiny_world
    settings = make_settings(tmp_path, curriculum={"marked_fraction": 1.0, "min_points": 2, "max_points": 3, "variants": ["beside"]})
    materialize_asset(settings, "ade20k_images")
    ids = manifest.image_ids["ade20k"]
    maps = _depth_maps(ids)
    for dataset in ("ade20k", "lvis", "refcoco"):
        rows = [{"dataset": "ade20k", "split": manifest.image_splits["ade20k"][i], "image_id": i, "image_sha256": "s", "teacher": "t",
                 "width": 96, "height": 72, "depth_png": encode_png(m), "raw_min": 0.0, "raw_max": 1.0}
                for i, m in maps.items()] if dataset == "ade20k" else []
        write_input(settings, "pseudo_depth", schemas.PSEUDO_DEPTH_SCHEMA, rows, partition=(dataset, "0"))
    write_input(settings, "lvis_images", schemas.LVIS_IMAGE_SCHEMA, [])
    write_input(settings, "refcoco_images", schemas.REFCOCO_IMAGE_SCHEMA, [])

    result = materialize_asset(settings, "marked_points")
    rows = read_rows(settings, "marked_points")
    assert [r["image_id"] for r in rows] == [i for i in ids if i != FLAT]
    for r in rows:
        n = r["n_points"]
        assert 2 <= n <= 3 and r["letters"] == ["A", "B", "C"][:n] and r["variant"] == "beside"
        assert r["marked_id"] == f"ade20k:{r['image_id']}:beside{n}"
        grid = cv2.resize(maps[r["image_id"]], (336, 336), interpolation=cv2.INTER_LINEAR)
        assert r["depth_values"] == [int(grid[y, x]) for x, y in zip(r["xs"], r["ys"])]
        assert r["answer"] == r["letters"][int(np.argmax(r["depth_values"]))]
        values = sorted(r["depth_values"])
        assert min(b - a for a, b in zip(values, values[1:])) >= 25  # clearly different depths, so one answer
        marked = cv2.imdecode(np.frombuffer(r["marked_png"], np.uint8), cv2.IMREAD_COLOR)
        assert marked.shape == (336, 336, 3)
    (reject,) = read_rows(settings, "marked_points_rejects")
    assert (reject["dataset"], reject["stage"], reject["record_id"]) == ("ade20k", "marked_points", FLAT)
    assert reject["reason"].startswith("no valid points")
    assert materialization_metadata(result, "marked_points")["dagster/row_count"] == 2

    check = check_results(result)["marked_points_consistent"]
    assert check.passed
    assert (check.metadata["checked"].value, check.metadata["wrong_answers"].value) == (2, 0)
