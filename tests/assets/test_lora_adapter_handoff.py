"""lora_adapter finds the curriculum's LLaVA export in its input rows, never in the instance's
latest curriculum metadata; the export's sha256 guards against a rewritten JSON."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from assets.curriculum_export import LlavaExport
from assets.finetune import build_finetune_assets
from perception_tokens import schemas
from perception_tokens.paths import file_sha256
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.resources import StorageResource
from pipeline_lib.settings import settings_from_dict
from pipeline_lib.tables import TableHandle, write_table_atomic
from upath import UPath


class RecordingPipesClient(dg.PipesSubprocessClient):
    """Records the command the asset launches and reports no result (the trainer is not under test here)."""

    commands: list[list[str]] = []

    def run(self, *, context, command, **kwargs):
        RecordingPipesClient.commands.append(list(command))

        class NoMessages:
            def get_custom_messages(self):
                return []

        return NoMessages()


def _export(root: Path, relative: str, sample: str) -> LlavaExport:
    """An export under the storage's local files base, named relative to it as the curriculum rows name it."""
    folder = root / relative
    (folder / "images").mkdir(parents=True)
    records = [{"id": sample, "image": "ade20k/a.jpg", "conversations": [{"from": "human", "value": "<image>\nq"},
                                                                         {"from": "gpt", "value": "a"}]}]
    (folder / "curriculum.json").write_text(json.dumps(records))
    return LlavaExport(f"{relative}/curriculum.json", f"{relative}/images", file_sha256(folder / "curriculum.json"))


def _curriculum_rows(export: LlavaExport, n: int) -> pa.Table:
    row = {f.name: None for f in schemas.CURRICULUM_SCHEMA}
    rows = [{**row, "position": i, "epoch": 0, "sample_id": f"s{i}", "task": "depth_atomic", "kind": "atomic",
             "image_file": "ade20k/a.jpg", **export.as_columns()} for i in range(n)]
    return pa.Table.from_pylist(rows, schema=schemas.CURRICULUM_SCHEMA)


def test_lora_adapter_reads_the_export_from_its_input_not_instance_metadata(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage_root = tmp_path / "storage"
    handed = _export(storage_root, "curriculum/files/handed", "from-input")
    decoy = _export(storage_root, "curriculum/files/decoy", "from-instance-metadata")
    write_table_atomic(UPath(storage_root / "curriculum.parquet"), _curriculum_rows(handed, 3))

    settings = settings_from_dict({"storage": {"root": str(storage_root)}})
    (lora_adapter,), _ = build_finetune_assets(settings)
    instance = dg.DagsterInstance.ephemeral()
    # the instance's latest curriculum materialization names another export
    instance.report_runless_asset_event(dg.AssetMaterialization(
        "curriculum", metadata={"llava_json": dg.MetadataValue.path(str(storage_root / decoy.llava_json)),
                                "image_folder": dg.MetadataValue.path(str(storage_root / decoy.llava_image_folder))}))
    RecordingPipesClient.commands.clear()
    result = dg.materialize(
        [lora_adapter, dg.AssetSpec("curriculum")], selection=[lora_adapter.key], instance=instance, raise_on_error=False,
        resources={"io_manager": ParquetIOManagerFactory(root=str(storage_root)), "storage": StorageResource(root=str(storage_root)),
                   "pipes_subprocess_client": RecordingPipesClient()})

    assert not result.success  # the recording client reports no training result
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "fine-tune process reported no result" in str(failure.step_failure_data.error.cause or failure.step_failure_data.error)
    (command,) = RecordingPipesClient.commands
    args = dict(zip(command[2::2], command[3::2]))
    assert args["--image-dir"] == str(storage_root / "curriculum/files/handed/images")
    copied = json.loads(Path(args["--records"]).read_text())
    assert [r["id"] for r in copied] == ["from-input"]
    assert Path(args["--records"]).parent.parent == storage_root / "lora_adapter" / "files"


def test_rewritten_export_is_refused_naming_the_file(tmp_path):
    export = _export(tmp_path, "curriculum/files/llava", "first")
    (tmp_path / export.llava_json).write_text("[]")
    with pytest.raises(ValueError, match=r"curriculum\.json: sha256 .* is not the curriculum's"):
        export.verified_json(str(tmp_path))


def test_export_paths_in_rows_cannot_leave_the_storage(tmp_path):
    export = LlavaExport("../../etc/passwd", "curriculum/files/llava/images", "0" * 64)
    with pytest.raises(ValueError, match="must stay under"):
        export.verified_json(str(tmp_path))


def test_curriculum_table_without_export_columns_is_a_clear_error(tmp_path):
    old = pa.table({"position": [0], "sample_id": ["s0"]})
    path = UPath(tmp_path / "curriculum.parquet")
    write_table_atomic(path, old)
    with pytest.raises(ValueError, match=r"curriculum table has no \['llava_json', 'llava_image_folder', 'llava_json_sha256'\]"):
        LlavaExport.from_table(TableHandle([path]))


def test_two_exports_in_one_table_are_refused(tmp_path):
    a, b = _export(tmp_path, "a", "a"), _export(tmp_path, "b", "b")
    path = UPath(tmp_path / "curriculum.parquet")
    write_table_atomic(path, pa.concat_tables([_curriculum_rows(a, 1), _curriculum_rows(b, 1)]))
    with pytest.raises(ValueError, match="expected one LLaVA export named in the curriculum rows, found 2"):
        LlavaExport.from_table(TableHandle([path]))
