"""``ptok export-llava``: copy the curriculum's LLaVA export (JSON + image folder) for LLaVA's own
training scripts. The export is the one the curriculum table's rows name, checked against its
sha256, so this works the same whether the tables are local or on object storage."""

from __future__ import annotations

from pathlib import Path


def export_llava(settings, dest: Path) -> Path:
    from assets.curriculum_export import LlavaExport, copy_export
    from pipeline_lib.folders import previous_table, table_path

    curriculum = previous_table(settings.storage_root, "curriculum")
    if curriculum is None:
        raise FileNotFoundError(f"{table_path(settings.storage_root, 'curriculum')} is missing or unreadable: "
                                "materialize curriculum first")
    return copy_export(LlavaExport.from_table(curriculum), dest)
