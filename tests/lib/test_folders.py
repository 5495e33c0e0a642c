"""pipeline_lib.folders names each place once: local roots and object storage (memory://) alike;
the IO manager writes partitions where ``table_path`` says; ``ptok export-llava`` finds the
export through the curriculum's rows, also when the tables are on object storage."""

import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pyarrow as pa
import pytest

from assets.curriculum_export import LlavaExport
from perception_tokens import schemas
from perception_tokens.paths import file_sha256
from pipeline_lib import folders
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.resources import StorageResource
from pipeline_lib.tables import write_table_atomic
from pipelines.cli_export import export_llava

PARTS = dg.MultiPartitionsDefinition({"shard": dg.StaticPartitionsDefinition(["0", "1"]),
                                      "dataset": dg.StaticPartitionsDefinition(["ade20k", "lvis"])})


def test_local_root_keeps_files_beside_the_tables(tmp_path):
    root = str(tmp_path / "storage")
    assert folders.files_dir(root, "depth_vqvae", "abc") == tmp_path / "storage" / "depth_vqvae" / "files" / "abc"
    assert (tmp_path / "storage" / "depth_vqvae" / "files" / "abc").is_dir()
    assert folders.run_dir(root, "lora_adapter", "k1") == tmp_path / "storage" / "lora_adapter" / "files" / "k1"
    assert folders.curriculum_export_dir(root) == tmp_path / "storage" / "curriculum" / "files" / "llava"
    assert folders.eval_chart_file(root) == tmp_path / "storage" / "eval_scores" / "files" / "scores.png"
    assert folders.report_file(root) == tmp_path / "report.html"
    assert str(folders.table_path(root, "box_tokens")) == str(tmp_path / "storage" / "box_tokens.parquet")
    # the storage resource answers with the same functions
    assert StorageResource(root=root).local_files_dir("depth_vqvae", "abc") == folders.files_dir(root, "depth_vqvae", "abc")


def test_object_storage_root_puts_local_files_under_ptok(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = "memory://ptok-folders/storage"
    assert folders.files_dir(root, "lora_adapter", "k1") == Path(".ptok/files/lora_adapter/files/k1")
    assert (tmp_path / ".ptok/files/lora_adapter/files/k1").is_dir()
    assert folders.curriculum_export_dir(root) == Path(".ptok/files/curriculum/files/llava")
    assert folders.report_file(root) == Path(".ptok/report.html")
    path = folders.table_path(root, "depth_tokens", PARTS, dg.MultiPartitionKey({"dataset": "lvis", "shard": "1"}))
    assert path.protocol == "memory" and path.path.endswith("ptok-folders/storage/depth_tokens/lvis/1.parquet")


def test_io_manager_writes_partitions_where_table_path_says():
    root = f"memory://ptok-folders-{uuid.uuid4().hex}/storage"

    @dg.asset(partitions_def=PARTS)
    def shards(context: dg.AssetExecutionContext) -> pa.Table:
        keys = context.partition_key.keys_by_dimension
        return pa.table({"dataset": [keys["dataset"]], "shard": [keys["shard"]]})

    key = dg.MultiPartitionKey({"dataset": "ade20k", "shard": "1"})
    assert dg.materialize([shards], partition_key=str(key), resources={"io_manager": ParquetIOManagerFactory(root=root)}).success
    previous = folders.previous_table(root, "shards", PARTS, key)
    assert previous is not None and previous.read().to_pylist() == [{"dataset": "ade20k", "shard": "1"}]
    assert folders.previous_table(root, "shards", PARTS, dg.MultiPartitionKey({"dataset": "lvis", "shard": "0"})) is None
    assert [p.path for p in folders.partition_tables(root, "shards", PARTS).paths] == [folders.table_path(root, "shards", PARTS, key).path]


def test_previous_table_broken_is_absent_for_reuse_but_an_error_for_history(tmp_path):
    root = str(tmp_path)
    (tmp_path / "eval_scores.parquet").write_bytes(b"not parquet")
    assert folders.previous_table(root, "eval_scores") is None
    with pytest.raises(ValueError, match=r"eval_scores\.parquet: unreadable .*history of eval_scores"):
        folders.previous_table(root, "eval_scores", must_be_readable=True)
    assert folders.previous_table(root, "missing_one", must_be_readable=True) is None


def test_export_llava_reads_the_export_from_curriculum_rows_on_object_storage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = f"memory://ptok-export-{uuid.uuid4().hex}/storage"
    llava = folders.curriculum_export_dir(root)  # local, since the tables are on object storage
    (llava / "images" / "ade20k").mkdir(parents=True)
    (llava / "images" / "ade20k" / "a.jpg").write_bytes(b"jpeg bytes")
    (llava / "curriculum.json").write_text(json.dumps([{"id": "s0#0", "image": "ade20k/a.jpg", "conversations": []}]))
    export = LlavaExport("curriculum/files/llava/curriculum.json", "curriculum/files/llava/images", file_sha256(llava / "curriculum.json"))
    row = {**{f.name: None for f in schemas.CURRICULUM_SCHEMA}, "position": 0, "sample_id": "s0", **export.as_columns()}
    write_table_atomic(folders.table_path(root, "curriculum"), pa.Table.from_pylist([row], schema=schemas.CURRICULUM_SCHEMA))

    out = export_llava(SimpleNamespace(storage_root=root), tmp_path / "out")
    assert out == tmp_path / "out" / "curriculum.json"
    assert json.loads(out.read_text())[0]["id"] == "s0#0"
    assert (tmp_path / "out" / "images" / "ade20k" / "a.jpg").read_bytes() == b"jpeg bytes"

    (llava / "curriculum.json").write_text("[]")  # rewritten behind the table's back
    with pytest.raises(ValueError, match="is not the curriculum's"):
        export_llava(SimpleNamespace(storage_root=root), tmp_path / "out2")


def test_export_llava_without_a_curriculum_names_the_table(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"curriculum\.parquet is missing or unreadable: materialize curriculum first \(ptok materialize curriculum\)"):
        export_llava(SimpleNamespace(storage_root=str(tmp_path)), tmp_path / "out")
