"""DuckDB catalog views and the YAML settings."""

import pyarrow as pa
import pytest
from upath import UPath

from pipeline_lib import catalog
from pipeline_lib.settings import ConfigError, load_settings, settings_from_dict
from pipeline_lib.tables import write_table_atomic


def test_views_cover_partitions_and_skip_staging(tmp_path):
    root = tmp_path / "storage"
    for part, n in (("a/0", 3), ("a/1", 2), ("b/0", 4)):
        write_table_atomic(UPath(root / "pseudo_depth" / f"{part}.parquet"), pa.table({"v": list(range(n))}))
    (root / "pseudo_depth" / ".staging-dead.parquet").write_bytes(b"half written")
    db = tmp_path / "catalog.duckdb"
    assert catalog.refresh_all(db, str(root)) == ["pseudo_depth"]
    cols, rows = catalog.query(db, "select count(*), sum(v) from pseudo_depth")
    assert rows == [(9, 3 + 1 + 6)]


def test_query_before_any_table_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="catalog.duckdb"):
        catalog.query(tmp_path / "catalog.duckdb", "select 1")


def test_settings_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.num_shards"):
        settings_from_dict({"datasets": {"num_shards": 0}})
    with pytest.raises(ConfigError, match=r"storage\.bogus"):
        settings_from_dict({"storage": {"bogus": 1}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_settings(bad)


def test_settings_resolve_demo_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    s = settings_from_dict({"demo": {"root": "demo"}, "datasets": {"lvis_root": "/data/lvis"}})
    assert s.dataset_root("coco") == (tmp_path / "demo" / "coco")
    assert str(s.dataset_root("lvis")) == "/data/lvis"
    assert s.uses_demo("coco") and not s.uses_demo("lvis")
    s2 = settings_from_dict({"demo": {"enabled": False}})
    with pytest.raises(ConfigError, match="ade20k_root"):
        s2.dataset_root("ade20k")


def test_relative_config_is_found_in_workdir_or_project(tmp_path, monkeypatch):
    from pipeline_lib.settings import PROJECT_ROOT, config_path

    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("PTOK_CONFIG", "configs/demo.yaml")
    assert config_path() == PROJECT_ROOT / "configs" / "demo.yaml"  # not in the workdir: the project's
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.yaml").write_text("demo: {n_ade20k: 5}\n")
    assert config_path() == tmp_path / "configs" / "demo.yaml"  # the workdir's own wins
    assert load_settings().demo.n_ade20k == 5
    monkeypatch.setenv("PTOK_CONFIG", "configs/nope.yaml")
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_settings()
