"""The curriculum's LLaVA export: ``curriculum.json`` and every image it names, in the folder
``pipeline_lib.folders.curriculum_export_dir`` names, and the reference to it that travels
in the curriculum's rows (``lora_adapter`` and ``ptok export-llava`` read it from there)."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from perception_tokens.curriculum import pools as curriculum_pools
from perception_tokens.curriculum.llava_json import to_llava_record, write_llava_json
from perception_tokens.paths import file_sha256
from pipeline_lib.folders import LLAVA_IMAGES_NAME, LLAVA_JSON_NAME, curriculum_export_dir, from_files, relative_to_files
from pipeline_lib.tables import TableHandle

EXPORT_COLUMNS = ("llava_json", "llava_image_folder", "llava_json_sha256")


@dataclass(frozen=True)
class LlavaExport:
    """Where an export is (relative to the storage's local files base, so the rows, and the
    curriculum's data version, do not depend on where storage is) and what its JSON holds;
    the same on every curriculum row."""

    llava_json: str
    llava_image_folder: str
    llava_json_sha256: str

    def as_columns(self) -> dict[str, str]:
        return {"llava_json": self.llava_json, "llava_image_folder": self.llava_image_folder,
                "llava_json_sha256": self.llava_json_sha256}

    @classmethod
    def from_table(cls, curriculum: TableHandle) -> "LlavaExport":
        """The export a curriculum table was written with; an error naming the table when it has none."""
        names = curriculum.schema.names
        missing = [c for c in EXPORT_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{curriculum.paths}: curriculum table has no {missing} columns (written before exports "
                             "travelled in its rows): materialize curriculum again")
        refs = {tuple(r[c] for c in EXPORT_COLUMNS) for r in curriculum.iter_rows(columns=list(EXPORT_COLUMNS))}
        if len(refs) != 1:
            raise ValueError(f"{curriculum.paths}: expected one LLaVA export named in the curriculum rows, found {len(refs)}")
        return cls(*refs.pop())

    def image_folder(self, root: str) -> Path:
        return from_files(root, self.llava_image_folder)

    def verified_json(self, root: str) -> Path:
        """The JSON file, after checking it is still the one the curriculum exported."""
        path = from_files(root, self.llava_json)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the curriculum's LLaVA JSON is missing: materialize curriculum again")
        actual = file_sha256(path)
        if actual != self.llava_json_sha256:
            raise ValueError(f"{path}: sha256 {actual[:12]}... is not the curriculum's {self.llava_json_sha256[:12]}...: "
                             "the export was rewritten since; materialize curriculum again")
        return path


def export_llava(root: str, schedule, image_tables: dict[str, TableHandle], marked_points: TableHandle,
                 aurora_style: bool, asset_name: str = "curriculum") -> LlavaExport:
    """Write the LLaVA JSON and every image it names into a fresh folder, then swap it in for the export folder."""
    folder = curriculum_export_dir(root, asset_name=asset_name)
    tmp = folder.parent / f".{folder.name}-{uuid.uuid4().hex}"
    images = tmp / LLAVA_IMAGES_NAME
    (images / "marked").mkdir(parents=True)
    needed = {(s.image.dataset, s.image.image_id): s.image.file_name for _, s in schedule if not s.image.file_name.startswith("marked/")}
    for dataset, table in image_tables.items():
        for r in table.iter_rows(columns=["image_id", "image_bytes"]):
            name = needed.get((dataset, r["image_id"]))
            if name:
                (images / name).parent.mkdir(parents=True, exist_ok=True)
                (images / name).write_bytes(r["image_bytes"])
    marked_needed = {s.image.file_name for _, s in schedule if s.image.file_name.startswith("marked/")}
    for r in marked_points.iter_rows(columns=["marked_id", "marked_png"]):
        name = curriculum_pools.marked_image_file(r["marked_id"])
        if name in marked_needed:
            (images / name).write_bytes(r["marked_png"])
    records = [{**to_llava_record(s), "id": f"{s.sample_id}#{i}"} for i, (_, s) in enumerate(schedule)]
    # the reference's notebooks write indent=2 with ASCII escapes; the project writes compact UTF-8
    write_llava_json(records, tmp / LLAVA_JSON_NAME, **({"indent": 2, "ensure_ascii": True} if aurora_style else {}))
    digest = file_sha256(tmp / LLAVA_JSON_NAME)
    old = folder.parent / f".old-{uuid.uuid4().hex}"
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return LlavaExport(relative_to_files(root, folder / LLAVA_JSON_NAME), relative_to_files(root, folder / LLAVA_IMAGES_NAME), digest)


def copy_export(root: str, export: LlavaExport, dest: Path) -> Path:
    """Copy an export (verified against its sha256) to ``dest`` for LLaVA's own scripts; returns the JSON's path."""
    source = export.verified_json(root)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest / LLAVA_JSON_NAME)
    shutil.copytree(export.image_folder(root), dest / LLAVA_IMAGES_NAME, dirs_exist_ok=True)
    return dest / LLAVA_JSON_NAME
