"""``ptok export-llava``: copy the curriculum's LLaVA export (JSON + image folder) for LLaVA's own
training scripts. The export is the one the curriculum table's rows name, checked against its
sha256, so this works the same whether the tables are local or on object storage."""

from __future__ import annotations

from pathlib import Path


def export_llava(settings, dest: Path) -> Path:
    from assets.curriculum_export import LlavaExport, copy_export
    from pipeline_lib.folders import committed_table

    return copy_export(settings.storage_root, LlavaExport.from_table(committed_table(settings.storage_root, "curriculum")), dest)
