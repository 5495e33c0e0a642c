"""Parquet storage: atomic staging, lineage in key-value metadata, content hashes, lazy reads."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from pipeline_lib.tables import LINEAGE_KEY, TableHandle, read_lineage, stage_table, write_table_atomic

SCHEMA = pa.schema([("image_id", pa.string()), ("value", pa.int64()), ("blob", pa.binary())])


def _rows(n, offset=0):
    return [{"image_id": f"img{i}", "value": i * 10 + offset, "blob": bytes([i % 256]) * 3} for i in range(n)]


def test_staged_table_is_invisible_until_committed(tmp_path):
    d = UPath(tmp_path / "asset")
    staged = stage_table(d, SCHEMA, _rows(10), {"asset_key": "asset", "run_id": "r1"}, batch_rows=4)
    assert staged.num_rows == 10
    assert staged.staging_path.name.startswith(".staging-")
    final = d / "part.parquet"
    assert not final.exists()
    staged.commit(final)
    assert final.exists() and not staged.staging_path.exists()
    pf = pq.ParquetFile(str(final))
    assert pf.metadata.num_rows == 10
    assert pf.metadata.num_row_groups == 3  # 4 + 4 + 2: streamed in row groups
    assert read_lineage(final) == {"asset_key": "asset", "run_id": "r1"}
    assert LINEAGE_KEY in pf.schema_arrow.metadata


def test_content_hash_depends_on_rows_not_on_lineage(tmp_path):
    d = UPath(tmp_path)
    a = stage_table(d, SCHEMA, _rows(5), {"run_id": "a"})
    b = stage_table(d, SCHEMA, _rows(5), {"run_id": "b"})
    c = stage_table(d, SCHEMA, _rows(5, offset=1), {"run_id": "a"})
    assert a.content_hash == b.content_hash
    assert a.content_hash != c.content_hash


def test_failed_write_leaves_nothing_behind(tmp_path):
    d = UPath(tmp_path / "asset")

    def rows():
        yield from _rows(3)
        raise RuntimeError("reader broke")

    with pytest.raises(RuntimeError, match="reader broke"):
        stage_table(d, SCHEMA, rows())
    assert list((tmp_path / "asset").iterdir()) == []


def test_commit_replaces_previous_version_atomically(tmp_path):
    final = UPath(tmp_path / "t" / "x.parquet")
    write_table_atomic(final, pa.Table.from_pylist(_rows(2), schema=SCHEMA))
    write_table_atomic(final, pa.Table.from_pylist(_rows(7), schema=SCHEMA))
    assert TableHandle([final]).num_rows == 7
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["x.parquet"]


def test_handle_streams_over_partitions(tmp_path):
    paths = []
    for k in range(3):
        p = UPath(tmp_path / "asset" / f"{k}.parquet")
        write_table_atomic(p, pa.Table.from_pylist(_rows(4, offset=k), schema=SCHEMA))
        paths.append(p)
    h = TableHandle(paths)
    assert h.num_rows == 12
    batches = list(h.iter_batches(columns=["value"], batch_size=2))
    assert all(b.num_rows <= 2 for b in batches) and len(batches) == 6
    assert [r["value"] for r in h.iter_rows(columns=["value"])][:5] == [0, 10, 20, 30, 1]
    assert h.read(columns=["image_id"]).column_names == ["image_id"]


def test_memory_filesystem_roundtrip():
    root = UPath("memory://ptok-test/asset")
    staged = stage_table(root, SCHEMA, _rows(6), {"run_id": "m"})
    final = root / "p.parquet"
    staged.commit(final)
    h = TableHandle([final])
    assert h.num_rows == 6
    assert read_lineage(final)["run_id"] == "m"


def test_stale_staging_cleanup_judges_only_its_own_regular_files_by_lstat(tmp_path):
    """Ages are set relative to a fixed ``now``: the result must not depend on uptime or the clock."""
    import os

    from pipeline_lib.storage_resource import _remove_stale_staging

    now = 2_000_000_000.0
    day = 24 * 3600
    staging = tmp_path / ".staging" / "asset"
    staging.mkdir(parents=True)
    old_file, young_file = staging / ".staging-old.parquet", staging / ".staging-young.parquet"
    old_file.write_bytes(b"x")
    young_file.write_bytes(b"y")
    os.utime(old_file, (now - 2 * day, now - 2 * day))
    os.utime(young_file, (now - 60, now - 60))
    # a link whose target is ancient (like /dev/full, dated at boot): never followed, never deleted
    target = tmp_path / "ancient-target.parquet"
    target.write_bytes(b"keep")
    os.utime(target, (now - 30 * day, now - 30 * day))
    link = staging / ".staging-link.parquet"
    os.symlink(target, link)
    os.utime(link, (now - 30 * day, now - 30 * day), follow_symlinks=False)  # even an old link stays
    # a folder with a staging-like name is not a file to delete either
    folder = staging / ".staging-folder.parquet"
    folder.mkdir()
    os.utime(folder, (now - 30 * day, now - 30 * day))

    _remove_stale_staging(UPath(staging), max_age_s=day, now=now)

    assert sorted(p.name for p in staging.iterdir()) == [".staging-folder.parquet", ".staging-link.parquet", ".staging-young.parquet"]
    assert target.read_bytes() == b"keep" and os.path.islink(link)


def test_history_keeps_old_rows_when_a_column_is_added(tmp_path):
    """eval_scores gained ci_low_pct / ci_high_pct: appending to an older history widens it with nulls."""
    import pyarrow as pa

    from pipeline_lib.history import append_outside_dagster

    old = pa.schema([("run", pa.string()), ("acc", pa.float64())])
    new = pa.schema([("run", pa.string()), ("acc", pa.float64()), ("ci_low", pa.float64())])
    append_outside_dagster(str(tmp_path), "scores", old, [{"run": "r1", "acc": 50.0}], {"source": "test"})
    append_outside_dagster(str(tmp_path), "scores", new, [{"run": "r2", "acc": 60.0, "ci_low": 41.5}], {"source": "test"})
    assert pq.read_table(str(tmp_path / "scores.parquet")).to_pylist() == [
        {"run": "r1", "acc": 50.0, "ci_low": None}, {"run": "r2", "acc": 60.0, "ci_low": 41.5}]
