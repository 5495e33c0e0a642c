"""``ptok demo``'s table of stored tables counts every table in one catalog query, and a table
that cannot be read is still listed, with its error (the others keep their counts)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_lib.settings import settings_from_dict
from pipelines.cli_summary import summary


def _settings(tmp_path):
    return settings_from_dict({"storage": {"root": str(tmp_path / "storage")}})


def _rows(settings, refresh=True) -> dict:
    shown = {}
    summary(settings, lambda cols, rows, title=None: shown.update({r[0]: r[1] for r in rows}), lambda m: None,
            refresh=refresh)
    return shown


def test_counts_every_table_and_names_the_broken_one(tmp_path):
    settings = _settings(tmp_path)
    root = tmp_path / "storage"
    root.mkdir()
    pq.write_table(pa.table({"x": [1, 2, 3]}), root / "alpha.parquet")
    (root / "beta").mkdir()
    pq.write_table(pa.table({"y": [1, 2]}), root / "beta" / "part-0.parquet")
    pq.write_table(pa.table({"y": [3]}), root / "beta" / "part-1.parquet")
    assert _rows(settings) == {"alpha": 3, "beta": 3}

    (root / "gamma.parquet").write_bytes(b"not parquet at all")
    shown = _rows(settings)
    assert shown["alpha"] == 3 and shown["beta"] == 3
    assert str(shown["gamma"]).startswith("error: ")


def test_without_refresh_a_missing_catalog_is_still_built(tmp_path):
    settings = _settings(tmp_path)
    root = tmp_path / "storage"
    root.mkdir()
    pq.write_table(pa.table({"x": [1]}), root / "alpha.parquet")
    assert _rows(settings, refresh=False) == {"alpha": 1}


def test_without_refresh_a_catalog_of_a_moved_storage_is_rebuilt(tmp_path):
    """Before the fix a no-op demo after moving the storage folder listed every table as an error:
    the catalog's views still named the old folder and only a run that changed something rebuilt them."""
    old = tmp_path / "old"
    (old / "storage").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1, 2]}), old / "storage" / "alpha.parquet")
    assert _rows(_settings(old)) == {"alpha": 2}
    moved = tmp_path / "moved"
    (old).rename(moved)
    assert _rows(_settings(moved), refresh=False) == {"alpha": 2}
