"""The curriculum's LLaVA export is complete or it is an error (issue 21.2): ``ptok export-llava``
verifies every image the JSON names, and the runner does not call the curriculum fresh while
its export lacks an image.

Before the fix ``export-llava`` exited 0 with an image missing from the copy, and a
curriculum whose export had lost an image stayed "fresh, skipped"."""

import json
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pyarrow as pa
import pytest

from assets.curriculum_export import IncompleteExportError, LlavaExport
from perception_tokens import schemas
from perception_tokens.paths import file_sha256
from pipeline_lib import folders
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.tables import write_table_atomic
from pipelines.cli_export import export_llava
from pipelines.runner import materialize_graph

IMAGES = ("ade20k/a.jpg", "lvis/b.jpg", "marked/c.png")


def _write_export(root: str, asset_name: str = "curriculum") -> pa.Table:
    """An export of three samples, one image each, and the curriculum rows that name it."""
    llava = folders.curriculum_export_dir(root, asset_name=asset_name)
    for name in IMAGES:
        (llava / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        (llava / "images" / name).write_bytes(name.encode())
    records = [{"id": f"s{i}#{i}", "image": name, "conversations": []} for i, name in enumerate(IMAGES)]
    (llava / "curriculum.json").write_text(json.dumps(records))
    export = LlavaExport(f"{asset_name}/files/llava/curriculum.json", f"{asset_name}/files/llava/images",
                         file_sha256(llava / "curriculum.json"))
    rows = [{**{f.name: None for f in schemas.CURRICULUM_SCHEMA}, "position": i, "sample_id": f"s{i}", **export.as_columns()}
            for i in range(len(IMAGES))]
    return pa.Table.from_pylist(rows, schema=schemas.CURRICULUM_SCHEMA)


def test_export_llava_with_an_image_missing_is_an_error_naming_it(tmp_path):
    root = str(tmp_path / "storage")
    write_table_atomic(folders.table_path(root, "curriculum"), _write_export(root))
    (folders.curriculum_export_dir(root) / "images" / "lvis" / "b.jpg").unlink()
    with pytest.raises(IncompleteExportError, match=r"images: 1 image\(s\) the LLaVA JSON names are missing \(lvis/b\.jpg\)"):
        export_llava(SimpleNamespace(storage_root=root), tmp_path / "out")
    assert not (tmp_path / "out" / "curriculum.json").exists()  # no JSON that promises what is not there


def test_ptok_export_llava_exits_nonzero_naming_the_missing_image(tmp_path, monkeypatch, capsys):
    from pipelines import cli

    root = str(tmp_path / "storage")
    write_table_atomic(folders.table_path(root, "curriculum"), _write_export(root))
    (folders.curriculum_export_dir(root) / "images" / "marked" / "c.png").unlink()
    monkeypatch.setattr(cli, "_settings", lambda: SimpleNamespace(storage_root=root))
    assert cli.main(["export-llava", str(tmp_path / "out")]) == 2
    assert "marked/c.png" in " ".join(capsys.readouterr().out.split())
    (folders.curriculum_export_dir(root) / "images" / "marked" / "c.png").write_bytes(b"back")
    assert cli.main(["export-llava", str(tmp_path / "out")]) == 0
    assert sorted(str(p.relative_to(tmp_path / "out" / "images")) for p in (tmp_path / "out" / "images").rglob("*.*")) == sorted(IMAGES)


@pytest.mark.parametrize("asset_name", ["curriculum", "curriculum__no_cot"])  # an experiment variant's too
def test_a_curriculum_whose_export_lost_an_image_is_not_fresh(tmp_path, asset_name):
    root = str(tmp_path / "storage")
    built = []

    @dg.asset(code_version="1", name=asset_name)
    def curriculum() -> pa.Table:
        built.append(1)
        return _write_export(root, asset_name)

    defs = dg.Definitions(assets=[curriculum], resources={"io_manager": ParquetIOManagerFactory(root=root)})
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        assert [s.status for s in materialize_graph(defs, instance, "*", log=lambda m: None).steps] == ["materialized"]
        assert [s.status for s in materialize_graph(defs, instance, "*", log=lambda m: None).steps] == ["skipped (fresh)"]
        (folders.curriculum_export_dir(root, asset_name=asset_name) / "images" / "ade20k" / "a.jpg").unlink()
        logs: list[str] = []
        report = materialize_graph(defs, instance, "*", log=logs.append)
        assert [s.status for s in report.steps] == ["materialized"], logs
        assert any("recorded fresh but its LLaVA export lacks 1 image(s) (ade20k/a.jpg): rebuilding" in line for line in logs), logs
        assert len(built) == 2 and (folders.curriculum_export_dir(root, asset_name=asset_name) / "images" / "ade20k" / "a.jpg").is_file()
