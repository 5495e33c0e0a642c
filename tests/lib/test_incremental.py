"""The one incremental-reuse function pseudo_depth and depth_tokens share."""

from __future__ import annotations

import pyarrow as pa
from upath import UPath

from pipeline_lib.incremental import merge_in_order, reusable_rows
from pipeline_lib.tables import TableHandle, write_table_atomic


def test_reusable_rows_keeps_only_rows_still_valid(tmp_path):
    path = UPath(tmp_path / "p.parquet")
    write_table_atomic(path, pa.table({"image_id": ["a", "b", "c"], "sha": ["1", "2", "3"], "teacher": ["t", "t", "old"]}))
    current = {"a": "1", "b": "changed", "c": "3"}
    kept = reusable_rows(TableHandle([path]), lambda r: r["teacher"] == "t" and current.get(r["image_id"]) == r["sha"])
    assert list(kept) == ["a"] and kept["a"]["sha"] == "1"
    assert reusable_rows(None, lambda r: True) == {}


def test_merge_in_order_interleaves_reused_and_new_and_skips_rejected():
    reused = {"b": {"image_id": "b", "v": "old"}, "d": {"image_id": "d", "v": "old"}}
    new = [{"image_id": "a", "v": "new"}, {"image_id": "e", "v": "new"}]  # "c" was rejected
    rows = list(merge_in_order(["a", "b", "c", "d", "e"], reused, new))
    assert [(r["image_id"], r["v"]) for r in rows] == [("a", "new"), ("b", "old"), ("d", "old"), ("e", "new")]


def test_merge_in_order_never_drops_a_new_row_out_of_order():
    rows = list(merge_in_order(["a", "b"], {}, [{"image_id": "b"}, {"image_id": "a"}]))
    assert [r["image_id"] for r in rows] == ["b", "a"]
